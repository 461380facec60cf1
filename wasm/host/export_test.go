package host

import (
	"context"

	"github.com/tetratelabs/wazero"
)

// InstantiateHostModule is exported for probes in tests.
func InstantiateHostModule(ctx context.Context, rt wazero.Runtime) error {
	return instantiateHostModule(ctx, rt)
}
