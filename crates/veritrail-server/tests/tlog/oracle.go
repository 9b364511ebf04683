// Command oracle checks veritrail's proofs and checkpoints with Go's own transparency-log
// code, golang.org/x/mod/sumdb/tlog and golang.org/x/mod/sumdb/note (the packages behind
// the Go checksum database), as an implementation independent of veritrail's.
//
// It reads one JSON case per line on standard input and writes one line per case:
// "ok" or "fail: <reason>". Cases:
//
//	{"kind": "checkpoint", "note": "<signed note>", "vkey": "<verifier key>"}
//	  -> opens the note with the key, parses the C2SP checkpoint body, and prints
//	     "ok <origin> <size> <root base64>".
//	{"kind": "inclusion", "index": i, "leaf_hash": b64, "tree_size": n, "root": b64, "proof": [b64...]}
//	  -> tlog.CheckRecord
//	{"kind": "consistency", "old_size": m, "old_root": b64, "tree_size": n, "root": b64, "proof": [b64...]}
//	  -> tlog.CheckTree
//
// Run it in GOPATH mode with Debian's golang-golang-x-mod-dev:
// GO111MODULE=off GOPATH=/usr/share/gocode go run oracle.go
package main

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type testCase struct {
	Kind     string   `json:"kind"`
	Note     string   `json:"note"`
	Vkey     string   `json:"vkey"`
	Index    int64    `json:"index"`
	LeafHash string   `json:"leaf_hash"`
	OldSize  int64    `json:"old_size"`
	OldRoot  string   `json:"old_root"`
	TreeSize int64    `json:"tree_size"`
	Root     string   `json:"root"`
	Proof    []string `json:"proof"`
}

func hash(text string) (tlog.Hash, error) {
	var h tlog.Hash
	raw, err := base64.StdEncoding.DecodeString(text)
	if err != nil {
		return h, err
	}
	if len(raw) != len(h) {
		return h, fmt.Errorf("a hash of %d bytes", len(raw))
	}
	copy(h[:], raw)
	return h, nil
}

func hashes(texts []string) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, 0, len(texts))
	for _, text := range texts {
		h, err := hash(text)
		if err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, nil
}

func check(c testCase) (string, error) {
	switch c.Kind {
	case "checkpoint":
		verifier, err := note.NewVerifier(c.Vkey)
		if err != nil {
			return "", err
		}
		opened, err := note.Open([]byte(c.Note), note.VerifierList(verifier))
		if err != nil {
			return "", err
		}
		lines := strings.Split(opened.Text, "\n")
		if len(lines) < 4 || lines[len(lines)-1] != "" {
			return "", fmt.Errorf("not a checkpoint body: %q", opened.Text)
		}
		size, err := strconv.ParseInt(lines[1], 10, 64)
		if err != nil {
			return "", err
		}
		if _, err := hash(lines[2]); err != nil {
			return "", err
		}
		return fmt.Sprintf(" %s %d %s", lines[0], size, lines[2]), nil
	case "inclusion":
		leaf, err := hash(c.LeafHash)
		if err != nil {
			return "", err
		}
		root, err := hash(c.Root)
		if err != nil {
			return "", err
		}
		proof, err := hashes(c.Proof)
		if err != nil {
			return "", err
		}
		return "", tlog.CheckRecord(tlog.RecordProof(proof), c.TreeSize, root, c.Index, leaf)
	case "consistency":
		old, err := hash(c.OldRoot)
		if err != nil {
			return "", err
		}
		root, err := hash(c.Root)
		if err != nil {
			return "", err
		}
		proof, err := hashes(c.Proof)
		if err != nil {
			return "", err
		}
		return "", tlog.CheckTree(tlog.TreeProof(proof), c.TreeSize, root, c.OldSize, old)
	}
	return "", fmt.Errorf("unknown kind %q", c.Kind)
}

func main() {
	in := bufio.NewScanner(os.Stdin)
	in.Buffer(make([]byte, 1<<20), 1<<26)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	for in.Scan() {
		var c testCase
		if err := json.Unmarshal(in.Bytes(), &c); err != nil {
			fmt.Fprintf(out, "fail: %v\n", err)
			continue
		}
		extra, err := check(c)
		if err != nil {
			fmt.Fprintf(out, "fail: %v\n", err)
		} else {
			fmt.Fprintf(out, "ok%s\n", extra)
		}
	}
	if err := in.Err(); err != nil {
		fmt.Fprintf(os.Stderr, "oracle: %v\n", err)
		os.Exit(2)
	}
}
