package export

import "github.com/agenttrace/agenttrace/internal/ocsf"

// OCSF is the format "ocsf": each record as an OCSF 1.3.0 event
// (docs/ocsf.md), the record itself embedded byte for byte as
// unmapped.agenttrace. metadata.uid is the dedupe key "<log id>:<seq>".
type OCSF struct {
	// ProductVersion is metadata.product.version: the agenttrace that
	// exports ("" leaves it out).
	ProductVersion string
}

// Name is "ocsf".
func (OCSF) Name() string { return "ocsf" }

// Append appends the record's OCSF event.
func (f OCSF) Append(dst []byte, r *Record) ([]byte, error) {
	return ocsf.Append(dst, r.Line, ocsf.Meta{LogID: r.LogID, ProductVersion: f.ProductVersion})
}
