package host

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/sys"

	"github.com/edgetrack/edgetrack/wasm/abi"
)

// initialInput is the default input buffer an instance reserves up front
// (Options.InputReserve); requests that encode larger grow it once.
const initialInput = 64 << 10

// instance is one initialised module instance. It runs one call at a time.
type instance struct {
	mod                        api.Module
	mem                        api.Memory
	reserve, configure, handle api.Function
	output                     *boundedBuffer

	inPtr, inCap uint32
	stack        [1]uint64
}

// init runs the c-shared initialiser, checks the ABI version, and hands the
// rule its configuration.
func (i *instance) init(ctx context.Context, config []byte, reserve int) error {
	if _, err := i.mod.ExportedFunction(abi.ExportInit).Call(ctx); err != nil {
		return invalid(ProblemInit, "%s: %v%s", abi.ExportInit, classify(ctx, err), i.outputSuffix())
	}
	res, err := i.mod.ExportedFunction(abi.ExportVersion).Call(ctx)
	if err != nil {
		return invalid(ProblemInit, "%s: %v", abi.ExportVersion, classify(ctx, err))
	}
	if v := uint32(res[0]); v != abi.Version {
		return invalid(ProblemInit, "speaks ABI version %d, this host speaks %d", v, abi.Version)
	}
	if err := i.grow(ctx, max(reserve, len(config))); err != nil {
		return err
	}
	if !i.mem.Write(i.inPtr, config) {
		return invalid(ProblemInit, "input buffer out of bounds")
	}
	i.stack[0] = uint64(len(config))
	if err := i.configure.CallWithStack(ctx, i.stack[:]); err != nil {
		return invalid(ProblemInit, "%s: %v%s", abi.ExportConfigure, classify(ctx, err), i.outputSuffix())
	}
	var v abi.Verdict
	if err := i.verdict(&v); err != nil {
		return invalid(ProblemInit, "%s: %v", abi.ExportConfigure, err)
	}
	if v.Status != 0 {
		return fmt.Errorf("%w: %s", ErrConfig, v.Message)
	}
	return nil
}

func (i *instance) outputSuffix() string {
	if s := i.output.String(); s != "" {
		return " (guest output: " + s + ")"
	}
	return ""
}

// grow makes the guest's input buffer at least n bytes.
func (i *instance) grow(ctx context.Context, n int) error {
	if uint64(n) > uint64(^uint32(0)) {
		return fmt.Errorf("%w: request of %d bytes", ErrTrap, n)
	}
	i.stack[0] = uint64(n)
	if err := i.reserve.CallWithStack(ctx, i.stack[:]); err != nil {
		return fmt.Errorf("%s: %w", abi.ExportReserve, classify(ctx, err))
	}
	ptr := uint32(i.stack[0])
	if _, ok := i.mem.Read(ptr, uint32(n)); !ok || ptr == 0 {
		return fmt.Errorf("%w: %s returned an out-of-bounds buffer", ErrTrap, abi.ExportReserve)
	}
	i.inPtr, i.inCap = ptr, uint32(n)
	return nil
}

var encodeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// call runs one request through the guest under the deadline.
func (i *instance) call(ctx context.Context, req *abi.Request, timeout time.Duration) (abi.Verdict, error) {
	bp := encodeBufs.Get().(*[]byte)
	defer encodeBufs.Put(bp)
	in := abi.AppendRequest((*bp)[:0], req)
	*bp = in

	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if uint32(len(in)) > i.inCap {
		if err := i.grow(cctx, len(in)); err != nil {
			return abi.Verdict{}, err
		}
	}
	if !i.mem.Write(i.inPtr, in) {
		return abi.Verdict{}, fmt.Errorf("%w: input buffer out of bounds", ErrTrap)
	}
	i.stack[0] = uint64(len(in))
	if err := i.handle.CallWithStack(cctx, i.stack[:]); err != nil {
		return abi.Verdict{}, classify(cctx, err)
	}
	var v abi.Verdict
	if err := i.verdict(&v); err != nil {
		return abi.Verdict{}, fmt.Errorf("%w: %v", ErrTrap, err)
	}
	return v, nil
}

// verdict decodes the Verdict whose packed address the last call left in
// the stack.
func (i *instance) verdict(v *abi.Verdict) error {
	packed := i.stack[0]
	ptr, n := uint32(packed>>32), uint32(packed)
	if n == 0 {
		*v = abi.Verdict{}
		return nil
	}
	b, ok := i.mem.Read(ptr, n)
	if !ok {
		return errors.New("verdict out of bounds")
	}
	if err := abi.DecodeVerdict(b, v); err != nil {
		return fmt.Errorf("verdict does not decode: %w", err)
	}
	return nil
}

// classify turns a wazero call error into ErrTimeout or ErrTrap.
func classify(ctx context.Context, err error) error {
	var exit *sys.ExitError
	if errors.As(err, &exit) && (exit.ExitCode() == sys.ExitCodeDeadlineExceeded || exit.ExitCode() == sys.ExitCodeContextCanceled) {
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w: %v", ErrTimeout, err)
	}
	return fmt.Errorf("%w: %v", ErrTrap, err)
}

func (i *instance) close(ctx context.Context) { _ = i.mod.Close(ctx) }
