package export

import (
	"github.com/klauspost/compress/zstd"
	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// zstdCodec is Parquet's ZSTD codec with a window the size of a page.
// parquet-go's own keeps a pool of encoders with zstd's default 8 MiB
// window, whose history buffers were most of an export's heap; a page is
// at most a few hundred KiB, so a larger window buys nothing.
type zstdCodec struct{ enc *zstd.Encoder }

// newZstdCodec returns a codec that compresses up to encoders pages at
// once (each encoder holds its own window and tables).
func newZstdCodec(encoders int) *zstdCodec {
	enc, err := zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithEncoderConcurrency(max(encoders, 1)),
		zstd.WithWindowSize(1<<20),
		zstd.WithZeroFrames(true),
		zstd.WithEncoderCRC(false),
	)
	if err != nil {
		panic(err) // the options are constant
	}
	return &zstdCodec{enc: enc}
}

func (c *zstdCodec) String() string { return "ZSTD" }

func (c *zstdCodec) CompressionCodec() format.CompressionCodec { return format.Zstd }

// Encode is safe for concurrent use: zstd.Encoder.EncodeAll is.
func (c *zstdCodec) Encode(dst, src []byte) ([]byte, error) {
	return c.enc.EncodeAll(src, dst[:0]), nil
}

func (c *zstdCodec) Decode(dst, src []byte) ([]byte, error) { return parquet.Zstd.Decode(dst, src) }
