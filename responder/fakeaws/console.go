package fakeaws

import (
	"bytes"
	"context"
	"encoding/base64"
	"image"
	"image/color"
	"image/jpeg"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// screenshotJPEG is a real 2x2 JPEG image, base64-encoded as
// GetConsoleScreenshot returns it.
var screenshotJPEG = func() string {
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	img.Set(0, 0, color.RGBA{R: 255, A: 255})
	img.Set(1, 1, color.RGBA{B: 255, A: 255})
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, nil); err != nil {
		panic("fakeaws: encoding the screenshot: " + err.Error())
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes())
}()

// GetConsoleOutput returns the instance's console output, base64-encoded.
// Output is absent when the instance has none, as on AWS.
func (e *EC2) GetConsoleOutput(ctx context.Context, in *ec2.GetConsoleOutputInput, _ ...func(*ec2.Options)) (*ec2.GetConsoleOutputOutput, error) {
	if in == nil {
		in = &ec2.GetConsoleOutputInput{}
	}
	c := e.c
	out := &ec2.GetConsoleOutputOutput{}
	err := c.call(ctx, serviceEC2, "GetConsoleOutput", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		if in.InstanceId == nil {
			return nil, missingParameter("instanceId")
		}
		inst, err := c.instanceLocked(aws.ToString(in.InstanceId))
		if err != nil {
			return nil, err
		}
		text := inst.ConsoleOutput
		return func() {
			out.InstanceId = aws.String(inst.ID)
			out.Timestamp = aws.Time(c.now())
			if text != "" {
				out.Output = aws.String(base64.StdEncoding.EncodeToString([]byte(text)))
			}
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetConsoleScreenshot returns a JPEG screenshot of a running instance.
// Instances made with ScreenshotUnsupported answer UnsupportedOperation.
func (e *EC2) GetConsoleScreenshot(ctx context.Context, in *ec2.GetConsoleScreenshotInput, _ ...func(*ec2.Options)) (*ec2.GetConsoleScreenshotOutput, error) {
	if in == nil {
		in = &ec2.GetConsoleScreenshotInput{}
	}
	c := e.c
	out := &ec2.GetConsoleScreenshotOutput{}
	err := c.call(ctx, serviceEC2, "GetConsoleScreenshot", aws.ToBool(in.DryRun), &out.ResultMetadata, func() (func(), error) {
		if in.InstanceId == nil {
			return nil, missingParameter("instanceId")
		}
		inst, err := c.instanceLocked(aws.ToString(in.InstanceId))
		if err != nil {
			return nil, err
		}
		if inst.State != types.InstanceStateNameRunning {
			return nil, incorrectInstanceState(inst.ID, inst.State)
		}
		if inst.ScreenshotUnsupported {
			return nil, apiError("UnsupportedOperation", "This instance type does not support console screenshots.")
		}
		return func() {
			out.InstanceId = aws.String(inst.ID)
			out.ImageData = aws.String(screenshotJPEG)
		}, nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
