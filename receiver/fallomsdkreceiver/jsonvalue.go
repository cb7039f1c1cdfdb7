package fallomsdkreceiver // import "github.com/fallom/fallom-collector/receiver/fallomsdkreceiver"

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// maxJSONDepth bounds the nesting of a body, so a hostile body cannot make
// the reader recurse deeply.
const maxJSONDepth = 64

// parseObject reads a JSON object into an ordered pcommon.Map: keys keep the
// order the SDK wrote them (attributes are stored in that order), numbers
// keep their integer-ness (an integer becomes Int, anything else Double),
// nested objects and arrays become maps and slices, null becomes an empty
// value. Anything but exactly one object is an error that says what it got.
func parseObject(body []byte) (pcommon.Map, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return pcommon.Map{}, fmt.Errorf("body is not JSON: %s", jsonErr(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return pcommon.Map{}, errors.New("body must be one JSON object")
	}
	m := pcommon.NewMap()
	if err := readMap(dec, m, 1); err != nil {
		return pcommon.Map{}, fmt.Errorf("body is not valid JSON: %s", jsonErr(err))
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return pcommon.Map{}, errors.New("body has data after its JSON object")
	}
	return m, nil
}

func jsonErr(err error) string {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "it ends early"
	}
	return err.Error()
}

// readMap reads the members of an object whose '{' was consumed.
func readMap(dec *json.Decoder, m pcommon.Map, depth int) error {
	if depth > maxJSONDepth {
		return fmt.Errorf("nested deeper than %d levels", maxJSONDepth)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		key, ok := tok.(string)
		if !ok {
			return errors.New("object key is not a string")
		}
		// A repeated key: the last one wins, as in JavaScript and Python.
		m.Remove(key)
		if err := readValue(dec, m.PutEmpty(key), depth); err != nil {
			return err
		}
	}
	_, err := dec.Token() // '}'
	return err
}

func readValue(dec *json.Decoder, v pcommon.Value, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth+1 > maxJSONDepth {
			return fmt.Errorf("nested deeper than %d levels", maxJSONDepth)
		}
		switch t {
		case '{':
			return readMap(dec, v.SetEmptyMap(), depth+1)
		case '[':
			s := v.SetEmptySlice()
			for dec.More() {
				if err := readValue(dec, s.AppendEmpty(), depth+1); err != nil {
					return err
				}
			}
			_, err := dec.Token() // ']'
			return err
		}
		return fmt.Errorf("unexpected %v", t)
	case string:
		v.SetStr(t)
	case bool:
		v.SetBool(t)
	case json.Number:
		return setNumber(v, t)
	case nil:
		// stays empty
	}
	return nil
}

func setNumber(v pcommon.Value, n json.Number) error {
	s := n.String()
	if !strings.ContainsAny(s, ".eE") {
		if i, err := n.Int64(); err == nil {
			v.SetInt(i)
			return nil
		}
	}
	f, err := n.Float64()
	if err != nil {
		return fmt.Errorf("number %.40s is out of range", s)
	}
	v.SetDouble(f)
	return nil
}
