package fakeaws

// EC2 is the account's Amazon EC2 service; it implements cloud.EC2. The
// operations live in the file of the resource they act on: instances.go,
// volumes.go, interfaces.go, groups.go, profiles.go, snapshots.go,
// console.go, tags.go.
type EC2 struct{ c *Cloud }
