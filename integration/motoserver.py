"""Run moto.server with the fixes of moto's emulation that the tests need.

Usage: python3 motoserver.py [moto.server arguments]

moto (5.x) reports the security groups of an attached network interface as
its own groups plus the instance's launch groups (NetworkInterface.group_set),
in DescribeNetworkInterfaces and DescribeInstances; on AWS an interface has
exactly its own groups, and only ModifyNetworkInterfaceAttribute changes them.
The responder reads an interface's groups back after moving it into
quarantine, and would take moto's addition for a group the interface still
has (an interface not isolated). The fix reports the interface's own groups.

moto's CloudFormation (TestAnalysisVpcHasNoInternetPath deploys the analysis
network through it) keeps an AWS::EC2::SubnetRouteTableAssociation apart
from the route table, so DescribeRouteTables shows no association, and
ignores an AWS::EC2::Subnet's MapPublicIpOnLaunch. The fixes associate the
subnet with the route table, as AssociateRouteTable does, and set the
subnet's attribute, as AWS does.
"""
import sys

from moto.ec2.models.elastic_network_interfaces import NetworkInterface

NetworkInterface.group_set = property(lambda self: self._group_set)

from moto.ec2.models.subnets import Subnet, SubnetBackend  # noqa: E402

_create_subnet_association = SubnetBackend.create_subnet_association


def _associate_too(self, route_table_id, subnet_id):
    self.associate_route_table(route_table_id, subnet_id=subnet_id)
    return _create_subnet_association(self, route_table_id, subnet_id)


SubnetBackend.create_subnet_association = _associate_too

_subnet_from_cfn = Subnet.create_from_cloudformation_json.__func__


def _subnet_with_public_ip_setting(cls, resource_name, cloudformation_json, *args, **kwargs):
    subnet = _subnet_from_cfn(cls, resource_name, cloudformation_json, *args, **kwargs)
    value = cloudformation_json["Properties"].get("MapPublicIpOnLaunch")
    if value is not None:
        subnet.map_public_ip_on_launch = str(value).lower() == "true"
    return subnet


Subnet.create_from_cloudformation_json = classmethod(_subnet_with_public_ip_setting)

from moto.server import main  # noqa: E402 (after the fix)

main(sys.argv[1:])
