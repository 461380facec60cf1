package host

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/edgetrack/edgetrack/wasm/abi"
	"github.com/edgetrack/edgetrack/wasm/instrument"
)

// errOutOfBounds panics out of a host function when a guest passes memory it
// does not have; wazero turns the panic into an error of the guest call.
var errOutOfBounds = errors.New("host: guest passed an out-of-bounds memory range")

// maxRandom bounds one random call (a rule needs ids, not megabytes).
const maxRandom = 4096

const i32 = api.ValueTypeI32

// hostFunc is one function of the "edgetrack" host module.
type hostFunc struct {
	name    string
	params  []api.ValueType
	results []api.ValueType
	fn      api.GoModuleFunc
}

// hostFuncs is ABI version 1's host module, in the order docs/ABI.md lists it.
var hostFuncs = []hostFunc{
	{"sha256", []api.ValueType{i32, i32, i32}, nil, func(_ context.Context, m api.Module, s []uint64) {
		sum := sha256.Sum256(read(m, s[0], s[1]))
		write(m, s[2], sum[:])
	}},
	{"md5", []api.ValueType{i32, i32, i32}, nil, func(_ context.Context, m api.Module, s []uint64) {
		sum := md5.Sum(read(m, s[0], s[1]))
		write(m, s[2], sum[:])
	}},
	{"hmac_sha256", []api.ValueType{i32, i32, i32, i32, i32}, nil, func(_ context.Context, m api.Module, s []uint64) {
		h := hmac.New(sha256.New, read(m, s[0], s[1]))
		h.Write(read(m, s[2], s[3]))
		var sum [32]byte
		write(m, s[4], h.Sum(sum[:0]))
	}},
	{"base64_encode", []api.ValueType{i32, i32, i32}, []api.ValueType{i32}, func(_ context.Context, m api.Module, s []uint64) {
		src := read(m, s[0], s[1])
		n := base64.StdEncoding.EncodedLen(len(src))
		base64.StdEncoding.Encode(read(m, s[2], uint64(n)), src)
		s[0] = uint64(n)
	}},
	{"base64_decode", []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}, func(_ context.Context, m api.Module, s []uint64) {
		src := read(m, s[0], s[1])
		if int(uint32(s[3])) < base64.StdEncoding.DecodedLen(len(src)) {
			s[0] = api.EncodeI32(-1)
			return
		}
		n, err := base64.StdEncoding.Decode(read(m, s[2], s[3]), src)
		if err != nil {
			s[0] = api.EncodeI32(-1)
			return
		}
		s[0] = uint64(n)
	}},
	{"ct_equal", []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}, func(_ context.Context, m api.Module, s []uint64) {
		s[0] = uint64(subtle.ConstantTimeCompare(read(m, s[0], s[1]), read(m, s[2], s[3])))
	}},
	{"random", []api.ValueType{i32, i32}, nil, func(_ context.Context, m api.Module, s []uint64) {
		if uint32(s[1]) > maxRandom {
			panic(errors.New("host: random asked for more than 4096 bytes"))
		}
		_, _ = rand.Read(read(m, s[0], s[1]))
	}},
	// checkpoint is what the checks package instrument adds call every
	// instrument.CheckpointEvery passes: it ends the guest's call once the call's
	// context is done (its deadline passed, or its caller gave up).
	{instrument.CheckpointImport, nil, nil, func(ctx context.Context, _ api.Module, _ []uint64) {
		if err := ctx.Err(); err != nil {
			panic(fmt.Errorf("host: rule interrupted: %w", err))
		}
	}},
}

// read returns a view of guest memory; it is valid until the guest runs again.
func read(m api.Module, ptr, size uint64) []byte {
	if uint32(size) == 0 {
		return nil
	}
	b, ok := m.Memory().Read(uint32(ptr), uint32(size))
	if !ok {
		panic(errOutOfBounds)
	}
	return b
}

// write copies b into the guest's memory at ptr. It copies into the slice
// read returns rather than calling Memory().Write, through whose interface
// b would escape: a digest on the caller's stack would then be allocated on
// every call.
func write(m api.Module, ptr uint64, b []byte) {
	if len(b) == 0 {
		return
	}
	copy(read(m, ptr, uint64(len(b))), b)
}

func instantiateHostModule(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(abi.HostModule)
	for _, f := range hostFuncs {
		b.NewFunctionBuilder().WithGoModuleFunction(f.fn, f.params, f.results).Export(f.name)
	}
	_, err := b.Instantiate(ctx)
	return err
}
