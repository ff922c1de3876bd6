package main

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
)

// apiPackage is what the reference is made of: one API package's types,
// with their doc comments and markers, read from source.
type apiPackage struct {
	dir     string // as given on the command line, for the header
	group   string // +groupName
	version string // the package name, e.g. v1alpha1
	doc     string
	// defaultOptional is set by +kubebuilder:validation:Optional on the
	// package: fields without a marker or omitempty are then optional.
	defaultOptional bool
	types           map[string]*apiType
	order           []string // type names in source order
}

// apiType is one named type declared in the package.
type apiType struct {
	name    string
	doc     string
	markers markers
	expr    ast.Expr // the type's definition: *ast.StructType, *ast.Ident…
	fields  []apiField
	consts  []apiConst
	// constDocs are the docs of const blocks that declare only constants
	// of this type (the block's doc says what the values have in common).
	constDocs []string
	imports   map[string]string // local name → import path, of the type's file
}

func (t *apiType) isStruct() bool {
	_, ok := t.expr.(*ast.StructType)
	return ok
}

func (t *apiType) root() bool { return t.markers.has("kubebuilder:object:root") }

// apiField is one field of a struct type.
type apiField struct {
	goName    string
	jsonName  string // "" for an inline (embedded) field
	inline    bool
	omitEmpty bool
	typ       ast.Expr
	doc       string
	markers   markers
}

// apiConst is one typed constant.
type apiConst struct {
	name  string
	value string // unquoted for a string literal, else Go source
	doc   string
}

// load parses the non-test Go files of dir.
func load(dir string) (*apiPackage, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("read package directory: %w", err)
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, e := range entries { // os.ReadDir sorts by name: a stable order
		name := e.Name()
		if e.IsDir() || !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ParseComments)
		if err != nil {
			return nil, fmt.Errorf("parse: %w", err)
		}
		files = append(files, f)
	}
	if len(files) == 0 {
		return nil, fmt.Errorf("no Go files in %s", dir)
	}
	p := &apiPackage{dir: filepath.ToSlash(filepath.Clean(dir)), version: files[0].Name.Name, types: map[string]*apiType{}}
	for _, f := range files {
		if f.Doc == nil {
			continue
		}
		doc, ms := splitDoc(f.Doc.Text())
		if doc != "" {
			p.doc = doc
		}
		if g, ok := ms.value("groupName"); ok {
			p.group = g
		}
		if ms.has("kubebuilder:validation:Optional") {
			p.defaultOptional = true
		}
	}
	if p.group == "" {
		return nil, fmt.Errorf("no +groupName marker in the package comment of %s", dir)
	}
	for _, f := range files {
		imports := fileImports(f)
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.TYPE {
				continue
			}
			for _, spec := range gd.Specs {
				ts := spec.(*ast.TypeSpec)
				if !ts.Name.IsExported() {
					continue
				}
				cg := ts.Doc
				if cg == nil && gd.Lparen == 0 {
					cg = gd.Doc
				}
				t := &apiType{name: ts.Name.Name, expr: ts.Type, imports: imports}
				t.doc, t.markers = splitDoc(cg.Text())
				if st, ok := ts.Type.(*ast.StructType); ok {
					if t.fields, err = structFields(st); err != nil {
						return nil, fmt.Errorf("type %s: %w", t.name, err)
					}
				}
				p.types[t.name] = t
				p.order = append(p.order, t.name)
			}
		}
	}
	for _, f := range files {
		if err := p.addConsts(fset, f); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func fileImports(f *ast.File) map[string]string {
	m := map[string]string{}
	for _, is := range f.Imports {
		path, _ := strconv.Unquote(is.Path.Value)
		name := path[strings.LastIndex(path, "/")+1:]
		if is.Name != nil {
			name = is.Name.Name
		}
		m[name] = path
	}
	return m
}

func structFields(st *ast.StructType) ([]apiField, error) {
	var fields []apiField
	for _, f := range st.Fields.List {
		var tag reflect.StructTag
		if f.Tag != nil {
			s, _ := strconv.Unquote(f.Tag.Value)
			tag = reflect.StructTag(s)
		}
		jsonTag, hasTag := tag.Lookup("json")
		if jsonTag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(jsonTag, ",")
		fd := apiField{typ: f.Type}
		fd.doc, fd.markers = splitDoc(f.Doc.Text())
		for o := range strings.SplitSeq(opts, ",") {
			switch o {
			case "omitempty", "omitzero":
				fd.omitEmpty = true
			case "inline":
				fd.inline = true
			}
		}
		if len(f.Names) == 0 { // embedded
			fd.goName = typeName(f.Type)
			if !hasTag || name == "" {
				// encoding/json promotes the fields of an embedded
				// struct without a name, as ",inline" does.
				fd.inline = true
			}
			if !fd.inline {
				fd.jsonName = name
			}
			fields = append(fields, fd)
			continue
		}
		for _, n := range f.Names {
			if !n.IsExported() {
				continue
			}
			fd := fd
			fd.goName, fd.jsonName = n.Name, name
			if fd.jsonName == "" {
				fd.jsonName = n.Name
			}
			if fd.inline {
				return nil, fmt.Errorf("field %s: ,inline on a named field", n.Name)
			}
			fields = append(fields, fd)
		}
	}
	return fields, nil
}

// typeName is the name of the named type at the heart of e (Time for
// *metav1.Time), or "".
func typeName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return e.Sel.Name
	case *ast.StarExpr:
		return typeName(e.X)
	}
	return ""
}

// addConsts records the typed constants of f under their types.
func (p *apiPackage) addConsts(fset *token.FileSet, f *ast.File) error {
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		blockTypes := map[string]bool{}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			id, ok := vs.Type.(*ast.Ident)
			if !ok {
				if vs.Type == nil && len(vs.Values) == 0 {
					return fmt.Errorf("constant %s: implicit (iota) values are not supported; write each value out", vs.Names[0].Name)
				}
				blockTypes[""] = true // untyped or of another package's type
				continue
			}
			t := p.types[id.Name]
			blockTypes[id.Name] = true
			if t == nil {
				continue
			}
			cg := vs.Doc
			if cg == nil && gd.Lparen == 0 {
				cg = gd.Doc
			}
			if cg == nil {
				cg = vs.Comment
			}
			doc, _ := splitDoc(cg.Text())
			for i, n := range vs.Names {
				if !n.IsExported() || i >= len(vs.Values) {
					continue
				}
				t.consts = append(t.consts, apiConst{name: n.Name, value: constValue(fset, vs.Values[i]), doc: doc})
			}
		}
		if gd.Lparen != 0 && gd.Doc != nil && len(blockTypes) == 1 {
			for name := range blockTypes {
				if t := p.types[name]; t != nil {
					doc, _ := splitDoc(gd.Doc.Text())
					t.constDocs = append(t.constDocs, doc)
				}
			}
		}
	}
	return nil
}

func constValue(fset *token.FileSet, e ast.Expr) string {
	if lit, ok := e.(*ast.BasicLit); ok && lit.Kind == token.STRING {
		if s, err := strconv.Unquote(lit.Value); err == nil {
			return s
		}
	}
	var b strings.Builder
	_ = printer.Fprint(&b, fset, e) // printing a parsed expression cannot fail
	return b.String()
}
