package adapterpb

import (
	"context"
	"testing"

	"github.com/bufbuild/protocompile"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"
)

// TestGeneratedMatchesProto compiles adapter.proto with a pure-Go compiler
// and checks that the generated code describes the same messages, so that
// a change to the .proto without go generate fails.
func TestGeneratedMatchesProto(t *testing.T) {
	c := protocompile.Compiler{Resolver: &protocompile.SourceResolver{}}
	files, err := c.Compile(context.Background(), "adapter.proto")
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 {
		t.Fatalf("compiled %d files, want 1", len(files))
	}
	want := protodesc.ToFileDescriptorProto(files[0])
	got := protodesc.ToFileDescriptorProto(File_adapter_proto)
	// Source info is not part of the generated descriptor, and JSON names
	// are filled in by one side only.
	want.SourceCodeInfo, got.SourceCodeInfo = nil, nil
	for _, fd := range []*descriptorpb.FileDescriptorProto{want, got} {
		for _, m := range fd.MessageType {
			clearJSONNames(m)
		}
	}
	if !proto.Equal(want, got) {
		t.Error("adapter.pb.go does not match adapter.proto: run go generate ./conformance/adapterpb")
	}
}

func clearJSONNames(m *descriptorpb.DescriptorProto) {
	for _, f := range m.Field {
		f.JsonName = nil
	}
	for _, n := range m.NestedType {
		clearJSONNames(n)
	}
}

// TestJSONMapping checks the shape of a request line as implementers see it.
func TestJSONMapping(t *testing.T) {
	r := &Request{Id: 7, Method: "xeddsa.verify", Params: &Request_XeddsaVerify{XeddsaVerify: &XEdDSAVerifyParams{
		PublicKey: []byte{1, 2, 3}, Message: []byte("m"), Signature: []byte{4}}}}
	b, err := protojson.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var back Request
	if err := protojson.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(r, &back) {
		t.Errorf("round trip of %s changed it", b)
	}
	// Implementers write lowerCamelCase names and base64 bytes.
	line := `{"id":"8","method":"xeddsa.verify","xeddsaVerify":{"publicKey":"AQID","message":"bQ==","signature":"BA=="}}`
	var r2 Request
	if err := protojson.Unmarshal([]byte(line), &r2); err != nil {
		t.Fatalf("parsing %s: %v", line, err)
	}
	if r2.GetXeddsaVerify().GetSignature()[0] != 4 {
		t.Error("field mapping differs from the documented one")
	}
}
