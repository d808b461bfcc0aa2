package vectors

import "github.com/missive-protocol/missive/vectors/internal/gen"

// Generate runs the generator and returns every vector file, by its name
// in FS (such as "v1/xeddsa.json"), with its exact bytes. The result equals
// the contents of FS: the generator is deterministic.
func Generate() (map[string][]byte, error) { return gen.Generate() }
