package export

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

func TestOCSFFormat(t *testing.T) {
	f := OCSF{ProductVersion: "1.2.3"}
	if f.Name() != "ocsf" {
		t.Errorf("Name %q", f.Name())
	}
	for _, r := range hecRecords(t, 43) {
		out, err := f.Append([]byte("x"), &r)
		if err != nil {
			t.Fatalf("seq %d: %v", r.Seq, err)
		}
		if out[0] != 'x' {
			t.Fatalf("Append did not append to dst")
		}
		var e struct {
			Metadata struct {
				UID     string
				Product struct{ Version string }
			}
			Unmapped struct{ Agenttrace json.RawMessage }
		}
		if err := json.Unmarshal(out[1:], &e); err != nil {
			t.Fatal(err)
		}
		var env struct{ Seq uint64 }
		json.Unmarshal(r.Line, &env)
		if e.Metadata.UID != fmt.Sprintf("%s:%d", r.LogID, env.Seq) || e.Metadata.Product.Version != "1.2.3" {
			t.Errorf("metadata %+v", e.Metadata)
		}
		if !bytes.Equal(e.Unmapped.Agenttrace, r.Line) {
			t.Errorf("unmapped.agenttrace is not the line:\n%s\n%s", e.Unmapped.Agenttrace, r.Line)
		}
	}
	bad := Record{Line: []byte(`{"v":1,"seq":1,"time":"never","type":"exec"}`), Seq: 1}
	if out, err := f.Append([]byte("x"), &bad); err == nil || string(out) != "x" {
		t.Errorf("a record without a time: %q, %v", out, err)
	}
}
