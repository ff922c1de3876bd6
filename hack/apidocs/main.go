// Command apidocs writes the Markdown API reference of a Kubernetes API
// package (docs/api.md from api/v1alpha1) from its Go types: every type
// reachable from the root kinds, each field with its JSON name, type,
// required or optional, default, validation and doc comment. It reads the
// source only (go/parser); make generate runs it through hack/generate.sh:
//
//	go run ./hack/apidocs -pkg api/v1alpha1 -out docs/api.md -kube-version v0.37.2
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "apidocs: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("apidocs", flag.ContinueOnError)
	pkg := fs.String("pkg", "", "directory of the API package (required), e.g. api/v1alpha1")
	out := fs.String("out", "", "Markdown file to write (required; - for stdout)")
	kube := fs.String("kube-version", "", "Kubernetes version whose API reference core types link to (required): v1.37, or the k8s.io/api module version v0.37.2")
	command := fs.String("command", "make generate", "command that regenerates the file, named in its header")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *pkg == "" || *out == "" || *kube == "" {
		return errors.New("-pkg, -out and -kube-version are required")
	}
	kubeVersion, err := kubeMinor(*kube)
	if err != nil {
		return err
	}
	p, err := load(*pkg)
	if err != nil {
		return err
	}
	md, err := render(p, renderOptions{KubeVersion: kubeVersion, Command: *command})
	if err != nil {
		return err
	}
	md = append(md, '\n')
	if *out == "-" {
		_, err = os.Stdout.Write(md)
		return err
	}
	if err := os.WriteFile(*out, md, 0o644); err != nil {
		return fmt.Errorf("write reference: %w", err)
	}
	return nil
}
