"""Run moto.server with the fixes of moto's emulation that the tests need.

Usage: python3 motoserver.py [moto.server arguments]

moto (5.x) reports the security groups of an attached network interface as
its own groups plus the instance's launch groups (NetworkInterface.group_set),
in DescribeNetworkInterfaces and DescribeInstances; on AWS an interface has
exactly its own groups, and only ModifyNetworkInterfaceAttribute changes them.
The responder reads an interface's groups back after moving it into
quarantine, and would take moto's addition for a group the interface still
has (an interface not isolated). The fix reports the interface's own groups.
"""
import sys

from moto.ec2.models.elastic_network_interfaces import NetworkInterface

NetworkInterface.group_set = property(lambda self: self._group_set)

from moto.server import main  # noqa: E402 (after the fix)

main(sys.argv[1:])
