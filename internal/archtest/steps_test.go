package archtest

import (
	"fmt"
	"go/ast"
	"testing"
)

// stepRules checks that steps never refer to each other: a step file (one
// that declares a step's Name method) uses only what it declares itself and
// what the helper files (those that declare no step) declare. What two steps
// share lives in a helper file.
func stepRules(t *testing.T, pkgs map[string]pkg) []violation {
	p, ok := pkgs["responder/step"]
	if !ok {
		t.Fatal("no responder/step package")
	}
	ps := parse(t, p)
	declaredIn := map[string]string{} // top-level name -> step file that declares it
	for name, f := range ps.files {
		if !declaresStep(f) {
			continue
		}
		for _, ident := range topLevelNames(f) {
			declaredIn[ident] = name
		}
	}
	var out []violation
	for _, name := range sortedKeys(ps.files) {
		f := ps.files[name]
		if !declaresStep(f) {
			continue
		}
		seen := map[string]bool{}
		for _, u := range f.Unresolved {
			other, ok := declaredIn[u.Name]
			if ok && other != name && !seen[u.Name] {
				seen[u.Name] = true
				out = append(out, violation{"steps never refer to each other", "responder/step/" + name,
					fmt.Sprintf("uses %s, declared by the step file %s (move it to a helper file)", u.Name, other)})
			}
		}
	}
	return out
}

// declaresStep reports whether a file declares a step: a method
// Name() string beside a method Run.
func declaresStep(f *ast.File) bool {
	methods := map[string]bool{}
	for _, d := range f.Decls {
		if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv != nil {
			methods[fn.Name.Name] = true
		}
	}
	return methods["Name"] && methods["Run"]
}

// topLevelNames lists the package-level names a file declares, methods
// excluded (they are reached through their type).
func topLevelNames(f *ast.File) []string {
	var names []string
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil {
				names = append(names, d.Name.Name)
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					names = append(names, s.Name.Name)
				case *ast.ValueSpec:
					for _, n := range s.Names {
						names = append(names, n.Name)
					}
				}
			}
		}
	}
	return names
}

func TestStepsNeverReferToEachOther(t *testing.T) { report(t, stepRules(t, modulePackages(t))) }
