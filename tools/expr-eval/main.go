// expr-eval evaluates Argo CD notification trigger expressions with the expr engine Argo CD itself uses
// (github.com/expr-lang/expr, formerly github.com/antonmedv/expr, the name Debian packages it under), against
// sample Application states, as Argo CD does: the Application is `app` in the environment.
//
// stdin:  {"cases": [{"id": "...", "expression": "...", "app": {...}}]}
// stdout: [{"id": "...", "result": <any>, "error": "..."}]
// Built by scripts/bootstrap.sh (ensure_expr_eval) from Debian's golang-go and golang-github-antonmedv-expr-dev.
package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/antonmedv/expr"
)

type testCase struct {
	ID         string                 `json:"id"`
	Expression string                 `json:"expression"`
	App        map[string]interface{} `json:"app"`
}

type result struct {
	ID     string      `json:"id"`
	Result interface{} `json:"result"`
	Error  string      `json:"error,omitempty"`
}

func evaluate(c testCase) result {
	env := map[string]interface{}{"app": c.App}
	program, err := expr.Compile(c.Expression, expr.Env(env))
	if err != nil {
		return result{ID: c.ID, Error: fmt.Sprintf("compile: %v", err)}
	}
	value, err := expr.Run(program, env)
	if err != nil {
		return result{ID: c.ID, Error: fmt.Sprintf("run: %v", err)}
	}
	return result{ID: c.ID, Result: value}
}

func main() {
	var input struct {
		Cases []testCase `json:"cases"`
	}
	if err := json.NewDecoder(os.Stdin).Decode(&input); err != nil {
		fmt.Fprintf(os.Stderr, "expr-eval: reading stdin: %v\n", err)
		os.Exit(2)
	}
	results := make([]result, 0, len(input.Cases))
	for _, c := range input.Cases {
		results = append(results, evaluate(c))
	}
	if err := json.NewEncoder(os.Stdout).Encode(results); err != nil {
		fmt.Fprintf(os.Stderr, "expr-eval: writing stdout: %v\n", err)
		os.Exit(2)
	}
}
