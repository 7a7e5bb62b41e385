// Command kstatus prints the kstatus result of each object it reads: a JSON array of objects
// on stdin, a JSON array of {"status", "message"} on stdout. It is Flux's own computation
// (github.com/fluxcd/cli-utils, the library kustomize-controller and helm-controller use), so
// the tests check our conditions against what Flux decides, not against a copy of its rules.
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

type result struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

func main() {
	raw, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	var objects []map[string]interface{}
	if err := utiljson.Unmarshal(raw, &objects); err != nil { // integers stay int64
		fail(err)
	}
	results := make([]result, 0, len(objects))
	for _, object := range objects {
		computed, err := status.Compute(&unstructured.Unstructured{Object: object})
		if err != nil {
			fail(err)
		}
		results = append(results, result{computed.Status.String(), computed.Message})
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "kstatus:", err)
	os.Exit(1)
}
