package dcvaas

import (
	"bytes"
	"encoding/pem"
)

// ChainPart returns one part of a PEM chain: "leaf", "chain" (the
// intermediates) or, for anything else, the full chain. The API's
// ?part= and the dashboard's downloads both cut it here.
func ChainPart(chainPEM, part string) ([]byte, error) {
	var blocks [][]byte
	rest := []byte(chainPEM)
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		blocks = append(blocks, pem.EncodeToMemory(b))
	}
	if len(blocks) == 0 {
		return nil, Errorf(EINTERNAL, "stored certificate holds no PEM block")
	}
	switch part {
	case "leaf":
		return blocks[0], nil
	case "chain":
		return bytes.Join(blocks[1:], nil), nil
	default:
		return bytes.Join(blocks, nil), nil
	}
}
