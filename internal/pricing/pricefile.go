package pricing

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MergeResult says what writing an imported list into a pricing file did,
// by model name.
type MergeResult struct {
	Added     []string // not in the file before
	Changed   []string // entries of an earlier import whose prices changed
	Unchanged int      // entries of an earlier import with the same prices
	Removed   []string // entries of an earlier import of the same list that it no longer has
	KeptOwn   []string // hand-written entries (no source) kept over the list's price
	Kept      int      // other entries left as they were
}

const newFileHeader = `Per-token USD prices for the openroutermapping processor (pricing_file).
They override the built-in table; a cost reported on the span always wins.
Entries with a "source:" were written by "fallomcol prices import": the next
import of the same list replaces them. Entries without one are yours: an
import never changes them. The collector reads this file at start.`

// MergePriceList writes list into the pricing file whose current content is
// existing (nil or empty for a new file) and returns the new content.
//
// Merge rules: the list's models replace the entries of an earlier import
// (any list) of the same name; entries of an earlier import of the same list
// that it no longer has are removed; hand-written entries (without a source)
// are kept, also over the list's price of the same model; everything else,
// comments included, stays as it was. replace starts from an empty file.
// source is written into each imported entry, e.g. "openrouter@2026-12-02".
func MergePriceList(existing []byte, list *PriceList, source string, replace bool) ([]byte, MergeResult, error) {
	var res MergeResult
	if replace {
		existing = nil
	}
	doc, models, err := pricingDocument(existing)
	if err != nil {
		return nil, res, err
	}
	imported := make(map[string]int, len(list.Models)) // lower-cased name -> index
	for i, m := range list.Models {
		imported[strings.ToLower(strings.TrimSpace(m.Name))] = i
	}
	written := make(map[int]bool, len(list.Models))
	sameList := string(list.Format) + "@"
	kept := models.Content[:0]
	for i := 0; i+1 < len(models.Content); i += 2 {
		key, value := models.Content[i], models.Content[i+1]
		entrySource := mappingValue(value, "source")
		idx, inList := imported[strings.ToLower(strings.TrimSpace(key.Value))]
		switch {
		case inList && entrySource == "":
			res.KeptOwn = append(res.KeptOwn, key.Value)
			written[idx] = true
		case inList:
			fresh := entryNode(list.Models[idx], source)
			if samePrices(value, fresh) {
				res.Unchanged++
			} else {
				res.Changed = append(res.Changed, key.Value)
			}
			value = fresh
			written[idx] = true
		case strings.HasPrefix(entrySource, sameList):
			res.Removed = append(res.Removed, key.Value)
			continue
		default:
			res.Kept++
		}
		kept = append(kept, key, value)
	}
	models.Content = kept
	for i, m := range list.Models { // sorted by name
		if written[i] {
			continue
		}
		models.Content = append(models.Content, stringNode(m.Name), entryNode(m, source))
		res.Added = append(res.Added, m.Name)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, res, fmt.Errorf("rendering pricing file: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, res, fmt.Errorf("rendering pricing file: %w", err)
	}
	return buf.Bytes(), res, nil
}

// pricingDocument parses an existing pricing file for editing, or starts a
// new one, and returns the document and its models mapping. A file that
// does not load as a pricing file is refused: the collector would refuse it
// too, and an import must not hide what is wrong with it.
func pricingDocument(existing []byte) (*yaml.Node, *yaml.Node, error) {
	var doc yaml.Node
	if len(bytes.TrimSpace(existing)) > 0 {
		if err := yaml.Unmarshal(existing, &doc); err != nil {
			return nil, nil, fmt.Errorf("the pricing file is not valid YAML, fix it first (or use --replace): %w", err)
		}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		root := &yaml.Node{Kind: yaml.MappingNode}
		doc = yaml.Node{Kind: yaml.DocumentNode, HeadComment: commentLines(newFileHeader), Content: []*yaml.Node{root}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, nil, errors.New("the pricing file is not a mapping with `models:`, fix it first (or use --replace)")
	}
	var models *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value == "models" {
			models = root.Content[i+1]
		}
	}
	switch {
	case models == nil:
		models = &yaml.Node{Kind: yaml.MappingNode}
		root.Content = append(root.Content, stringNode("models"), models)
	case models.Kind == yaml.ScalarNode && models.Tag == "!!null":
		*models = yaml.Node{Kind: yaml.MappingNode, HeadComment: models.HeadComment, LineComment: models.LineComment}
	case models.Kind != yaml.MappingNode:
		return nil, nil, errors.New("`models:` of the pricing file is not a mapping, fix it first (or use --replace)")
	}
	if len(models.Content) > 0 {
		if _, err := Parse(existing); err != nil {
			return nil, nil, fmt.Errorf("the pricing file has errors, fix them first (or use --replace): %w", err)
		}
	}
	return &doc, models, nil
}

// entryNode is a pricing-file entry with the model's prices as the list
// wrote them (plain YAML numbers) and its source.
func entryNode(m ImportedModel, source string) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for field, text := range m.Prices {
		if text != "" {
			n.Content = append(n.Content, stringNode(fieldNames[field]), &yaml.Node{Kind: yaml.ScalarNode, Value: text})
		}
	}
	n.Content = append(n.Content, stringNode("source"), stringNode(source))
	return n
}

// samePrices reports whether two entries hold the same prices (their
// sources aside).
func samePrices(a, b *yaml.Node) bool {
	for _, f := range fieldNames {
		x, y := mappingValue(a, f), mappingValue(b, f)
		if x != y && !sameDecimal(x, y) {
			return false
		}
	}
	return true
}

// mappingValue is the scalar value of key in mapping n, or "".
func mappingValue(n *yaml.Node, key string) string {
	if n == nil || n.Kind != yaml.MappingNode {
		return ""
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key && n.Content[i+1].Kind == yaml.ScalarNode {
			return strings.TrimSpace(n.Content[i+1].Value)
		}
	}
	return ""
}

func stringNode(v string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v}
}

func commentLines(text string) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		lines[i] = "# " + l
	}
	return strings.Join(lines, "\n")
}
