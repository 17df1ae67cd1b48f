package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// This file reads a bbolt file's pages itself, with ReadAt and checked
// offsets, so that a damaged file gives errors, never a fault or a
// panic. Open uses it to check the meta pages and the file's size before
// bbolt maps the file, and the whole tree before it writes to one;
// CheckFile and Repair walk the tree with it. bbolt trusts its file:
// reading a page past the end of a truncated file faults, and a damaged
// page makes it panic.
//
// The layout is bbolt's file format 2 (bbolt v1.4), in the machine's
// byte order. A page starts with a 16-byte header: id (8), flags (2),
// count (2), overflow (4); a page and its overflow pages are
// (1+overflow) × page size bytes. Pages 0 and 1 are meta pages, bbolt
// uses the valid one with the higher transaction id. A branch page holds
// count elements of pos (4), key size (4), child page (8); a leaf page
// count elements of flags (4), pos (4), key size (4), value size (4);
// pos counts from the element. A leaf element with flag 1 is a bucket:
// its value is the bucket's root page (8) and sequence (8), and, for a
// root page of 0, the bucket's only leaf page inline. The freelist page
// lists the free pages' ids (8 each); a count of 0xFFFF means the first
// id slot holds the count.

// bbolt's file format constants.
const (
	pageHeaderSize   = 16
	elementSize      = 16 // branch and leaf elements alike
	bucketHeaderSize = 16
	metaMagic        = 0xED0CDAED
	metaFormat       = 2
	metaChecksumAt   = 56 // bytes of the meta the checksum covers
	noFreelist       = ^uint64(0)

	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	metaPageFlag     = 0x04
	freelistPageFlag = 0x10
	bucketLeafFlag   = 0x01

	// maxTreeDepth bounds a walk: bbolt's trees are a few levels deep,
	// a deeper one has a cycle.
	maxTreeDepth = 64
	// maxTreeOverflow bounds the overflow pages of a branch or leaf
	// page: bbolt splits those at a page, so only a value bigger than a
	// page overflows, and wattrec's values are a few KiB. A larger count
	// is damage, and is not read.
	maxTreeOverflow = 256
)

// boltMeta is one meta page's content.
type boltMeta struct {
	pageSize       uint32
	root, sequence uint64 // the root bucket
	freelist       uint64 // page id, or noFreelist
	pgid           uint64 // the high-water mark: pages [0, pgid) are in use or free
	txid           uint64
}

// boltFile is a bbolt file read without bbolt.
type boltFile struct {
	f        *os.File
	path     string
	size     int64
	pageSize int
	meta     boltMeta // the meta page read by: the one bbolt uses
	metaID   int      // which page that is, 0 or 1
	metas    [2]boltMeta
	metaOK   [2]bool // whether each meta page is valid
	// metaProblem is what is wrong with the other meta page, if
	// anything: bbolt ignores it, so the last commit may be lost.
	metaProblem error
	// truncated says the file ends before the pages the meta page
	// counts: the pages past its end are lost.
	truncated error
}

// openBoltFile opens path and reads its meta pages. A file that is not
// bbolt's is ErrNotWattrec; a bbolt file without a valid meta page is
// ErrCorrupt. A file shorter than the pages its meta page counts opens,
// with truncated set.
func openBoltFile(path string) (*boltFile, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	bf := &boltFile{f: f, path: path}
	if err := bf.readMeta(); err != nil {
		f.Close()
		return nil, err
	}
	return bf, nil
}

func (bf *boltFile) Close() error { return bf.f.Close() }

// readMeta finds the meta page bbolt would use, as bbolt does: page 0
// gives the page size, or, when it is damaged, page 1 is looked for at
// the usual page sizes.
func (bf *boltFile) readMeta() error {
	fi, err := bf.f.Stat()
	if err != nil {
		return err
	}
	bf.size = fi.Size()
	if bf.size == 0 {
		return fmt.Errorf("%w: the file is empty", ErrNotWattrec)
	}
	m0, err0 := bf.metaAt(0)
	var m1 boltMeta
	var err1 error
	if err0 == nil {
		m1, err1 = bf.metaAt(int64(m0.pageSize))
	} else {
		err1 = err0
		for size := int64(1024); size <= 1<<16; size *= 2 {
			if m1, err1 = bf.metaAt(size); err1 == nil {
				break
			}
		}
	}
	bf.metas, bf.metaOK = [2]boltMeta{m0, m1}, [2]bool{err0 == nil, err1 == nil}
	switch {
	case err0 != nil && err1 != nil:
		if errors.Is(err0, errNoMagic) && errors.Is(err1, errNoMagic) && !bf.hasPages() {
			return fmt.Errorf("%w: no bbolt header", ErrNotWattrec)
		}
		return fmt.Errorf("%w: no valid meta page (page 0: %v; page 1: %v)", ErrCorrupt, err0, err1)
	case err0 == nil && (err1 != nil || m0.txid >= m1.txid):
		if err1 != nil {
			bf.metaProblem = fmt.Errorf("meta page 1: %w: %v", ErrCorrupt, err1)
		}
		return bf.useMeta(0)
	default:
		if err0 != nil {
			bf.metaProblem = fmt.Errorf("meta page 0: %w: %v; bbolt uses meta page 1 (transaction %d), so the last commit may be lost", ErrCorrupt, err0, m1.txid)
		}
		return bf.useMeta(1)
	}
}

// hasPages reports whether the file looks like bbolt's past its meta
// pages: page 2 or 3 says its id, with the flags of a page.
func (bf *boltFile) hasPages() bool {
	for size := int64(1024); size <= 1<<16; size *= 2 {
		for id := int64(2); id <= 3; id++ {
			var h [pageHeaderSize]byte
			if _, err := bf.f.ReadAt(h[:], id*size); err != nil {
				continue
			}
			flags := binary.NativeEndian.Uint16(h[8:])
			if binary.NativeEndian.Uint64(h[:]) == uint64(id) && (flags == branchPageFlag || flags == leafPageFlag || flags == freelistPageFlag) {
				return true
			}
		}
	}
	return false
}

// useMeta makes meta page id the one the file is read by.
func (bf *boltFile) useMeta(id int) error {
	m := bf.metas[id]
	bf.meta, bf.metaID, bf.pageSize, bf.truncated = m, id, int(m.pageSize), nil
	switch {
	case m.pgid < 4 || m.pgid > uint64(1<<62)/uint64(m.pageSize):
		return fmt.Errorf("%w: meta page %d counts %d pages", ErrCorrupt, id, m.pgid)
	case m.root < 2 || m.root >= m.pgid:
		return fmt.Errorf("%w: meta page %d: root page %d is outside pages [2, %d)", ErrCorrupt, id, m.root, m.pgid)
	case m.freelist != noFreelist && (m.freelist < 2 || m.freelist >= m.pgid):
		return fmt.Errorf("%w: meta page %d: freelist page %d is outside pages [2, %d)", ErrCorrupt, id, m.freelist, m.pgid)
	case bf.size < int64(m.pgid)*int64(m.pageSize):
		bf.truncated = fmt.Errorf("%w: truncated: the file is %d bytes, its %d pages of %d bytes end at %d",
			ErrCorrupt, bf.size, m.pgid, m.pageSize, int64(m.pgid)*int64(m.pageSize))
	}
	return nil
}

// useOlderMeta switches to the other meta page, when it is valid too: the
// tree of the transaction before the last, which stays whole on disk
// until the next commit reuses the pages the last one freed. It reports
// whether it switched.
func (bf *boltFile) useOlderMeta() bool {
	other := 1 - bf.metaID
	return bf.metaOK[other] && bf.metas[other].txid < bf.meta.txid && bf.useMeta(other) == nil
}

// errNoMagic says a meta page lacks bbolt's magic number.
var errNoMagic = errors.New("no bbolt magic number")

// metaAt reads and validates the meta page at offset off.
func (bf *boltFile) metaAt(off int64) (boltMeta, error) {
	var buf [pageHeaderSize + 64]byte
	if n, err := bf.f.ReadAt(buf[:], off); n < len(buf) {
		if err == io.EOF || err == nil {
			if n >= pageHeaderSize+4 && binary.NativeEndian.Uint32(buf[pageHeaderSize:]) == metaMagic {
				return boltMeta{}, fmt.Errorf("truncated: the file ends at %d, inside the meta page at %d", bf.size, off)
			}
			return boltMeta{}, fmt.Errorf("%w (the file is %d bytes)", errNoMagic, bf.size)
		}
		return boltMeta{}, err
	}
	p := buf[pageHeaderSize:]
	le := binary.NativeEndian
	if le.Uint32(p[0:]) != metaMagic {
		return boltMeta{}, errNoMagic
	}
	h := fnv.New64a()
	h.Write(p[:metaChecksumAt])
	switch {
	case le.Uint64(p[metaChecksumAt:]) != h.Sum64():
		return boltMeta{}, errors.New("checksum mismatch")
	case le.Uint32(p[4:]) != metaFormat:
		return boltMeta{}, fmt.Errorf("bbolt file format %d, not %d", le.Uint32(p[4:]), metaFormat)
	case le.Uint16(buf[8:]) != metaPageFlag:
		return boltMeta{}, fmt.Errorf("page flags %#x, not a meta page", le.Uint16(buf[8:]))
	}
	m := boltMeta{pageSize: le.Uint32(p[8:]), root: le.Uint64(p[16:]), sequence: le.Uint64(p[24:]),
		freelist: le.Uint64(p[32:]), pgid: le.Uint64(p[40:]), txid: le.Uint64(p[48:])}
	if m.pageSize < 1024 || m.pageSize > 1<<24 || m.pageSize&(m.pageSize-1) != 0 {
		return boltMeta{}, fmt.Errorf("page size %d", m.pageSize)
	}
	return m, nil
}

// boltPage is one page and its overflow pages.
type boltPage struct {
	id       uint64
	flags    uint16
	count    int
	overflow uint64 // pages after this one that belong to it
	b        []byte // the page's bytes, overflow pages included
	// badOverflow says the overflow count is damaged: b holds the one
	// page.
	badOverflow error
}

// page reads page id and its overflow pages. It checks that they are
// inside the file and the high-water mark and that the page says it is
// page id.
func (bf *boltFile) page(id uint64) (boltPage, error) {
	ps := int64(bf.pageSize)
	if id < 2 || id >= bf.meta.pgid {
		return boltPage{}, fmt.Errorf("page %d is outside pages [2, %d)", id, bf.meta.pgid)
	}
	if (int64(id)+1)*ps > bf.size {
		return boltPage{}, fmt.Errorf("page %d is past the end of the file (%d bytes)", id, bf.size)
	}
	b := make([]byte, ps)
	if _, err := bf.f.ReadAt(b, int64(id)*ps); err != nil {
		return boltPage{}, fmt.Errorf("page %d: %w", id, err)
	}
	le := binary.NativeEndian
	p := boltPage{id: le.Uint64(b), flags: le.Uint16(b[8:]), count: int(le.Uint16(b[10:])), overflow: uint64(le.Uint32(b[12:]))}
	switch {
	case p.id != id:
		return boltPage{}, fmt.Errorf("page %d says it is page %d", id, p.id)
	case id+p.overflow >= bf.meta.pgid || (int64(id+p.overflow)+1)*ps > bf.size ||
		p.overflow > maxTreeOverflow && (p.flags == branchPageFlag || p.flags == leafPageFlag):
		// Damaged, or the file is truncated: read what there is of
		// the page itself, which is all but the largest values need.
		p.badOverflow = fmt.Errorf("page %d: %d overflow pages: damaged, or past the high-water mark %d or the end of the file", id, p.overflow, bf.meta.pgid)
		p.overflow = 0
	case p.overflow > 0:
		b = append(b, make([]byte, int64(p.overflow)*ps)...)
		if _, err := bf.f.ReadAt(b[ps:], int64(id+1)*ps); err != nil {
			return boltPage{}, fmt.Errorf("page %d overflow: %w", id, err)
		}
	}
	p.b = b
	return p, nil
}

// elements checks that p's count elements fit in p.
func (p *boltPage) elements() error {
	if pageHeaderSize+p.count*elementSize > len(p.b) {
		return fmt.Errorf("page %d: %d elements do not fit in %d bytes", p.id, p.count, len(p.b))
	}
	return nil
}

// slice returns n bytes of p at element i's offset plus pos.
func (p *boltPage) slice(i int, pos, n uint64) ([]byte, error) {
	at := uint64(pageHeaderSize+i*elementSize) + pos
	if at+n > uint64(len(p.b)) || at+n < at {
		return nil, fmt.Errorf("page %d element %d: %d bytes at %d run past the page's %d bytes", p.id, i, n, at, len(p.b))
	}
	return p.b[at : at+n], nil
}

// branch returns element i of a branch page: its key and child page.
func (p *boltPage) branch(i int) (key []byte, child uint64, err error) {
	e := p.b[pageHeaderSize+i*elementSize:]
	le := binary.NativeEndian
	key, err = p.slice(i, uint64(le.Uint32(e)), uint64(le.Uint32(e[4:])))
	return key, le.Uint64(e[8:]), err
}

// leaf returns element i of a leaf page: flags, key and value.
func (p *boltPage) leaf(i int) (flags uint32, key, value []byte, err error) {
	e := p.b[pageHeaderSize+i*elementSize:]
	le := binary.NativeEndian
	flags, pos, ksize, vsize := le.Uint32(e), uint64(le.Uint32(e[4:])), uint64(le.Uint32(e[8:])), uint64(le.Uint32(e[12:]))
	kv, err := p.slice(i, pos, ksize+vsize)
	if err != nil {
		return 0, nil, nil, err
	}
	return flags, kv[:ksize], kv[ksize:], nil
}

// freePages reads the freelist page.
func (bf *boltFile) freePages() ([]uint64, error) {
	if bf.meta.freelist == noFreelist {
		return nil, nil
	}
	p, err := bf.page(bf.meta.freelist)
	if err != nil {
		return nil, fmt.Errorf("freelist: %w", err)
	}
	switch {
	case p.flags != freelistPageFlag:
		return nil, fmt.Errorf("freelist: page %d has flags %#x, not a freelist page", p.id, p.flags)
	case p.badOverflow != nil:
		return nil, fmt.Errorf("freelist: %w", p.badOverflow)
	}
	le := binary.NativeEndian
	ids, n := p.b[pageHeaderSize:], uint64(p.count)
	if n == 0xFFFF {
		n, ids = le.Uint64(ids), ids[8:]
	}
	if n > uint64(len(ids))/8 {
		return nil, fmt.Errorf("freelist: page %d lists %d pages, room for %d", p.id, n, len(ids)/8)
	}
	out := make([]uint64, n)
	for i := range out {
		out[i] = le.Uint64(ids[8*i:])
	}
	return out, nil
}

// walkRoot is a bucket's root as its parent stores it.
type walkRoot struct {
	page   uint64 // 0: inline
	inline []byte // the inline leaf page
	seq    uint64
}

// parseBucket decodes a bucket value.
func parseBucket(v []byte) (walkRoot, error) {
	if len(v) < bucketHeaderSize {
		return walkRoot{}, fmt.Errorf("bucket value of %d bytes, want at least %d", len(v), bucketHeaderSize)
	}
	le := binary.NativeEndian
	r := walkRoot{page: le.Uint64(v), seq: le.Uint64(v[8:])}
	if r.page == 0 {
		r.inline = v[bucketHeaderSize:]
		if len(r.inline) < pageHeaderSize {
			return walkRoot{}, fmt.Errorf("inline bucket of %d bytes, want at least %d", len(r.inline), pageHeaderSize)
		}
	}
	return r, nil
}

// walkEntry is one key of a bucket as a walk finds it.
type walkEntry struct {
	key, value []byte
	bucket     bool // value is a bucket (parse it with parseBucket)
}

// walkLoss is a part of a bucket a walk could not read: a page or an
// element, with the keys it held.
type walkLoss struct {
	from, to []byte // the keys were in [from, to); nil: unbounded
	err      error
}

// walker walks bucket trees of a boltFile page by page, in key order,
// and remembers every page it reached.
type walker struct {
	bf      *boltFile
	reached map[uint64]uint64 // page id -> the page it belongs to (itself, or the page an overflow page follows)
	// problems of the page structure that lose nothing: keys out of
	// order, unknown element flags, a damaged overflow count
	problems []error
	// pages of each kind reached, overflow pages counted apart
	branches, leaves, overflows int
}

func newWalker(bf *boltFile) *walker { return &walker{bf: bf, reached: map[uint64]uint64{}} }

// bucket calls fn with each entry of the bucket rooted at r, in key
// order, and loss with each part it cannot read; then the walk goes on
// with the next readable part. A key out of order is a problem, and its
// entry is still visited. fn may walk a sub-bucket.
func (w *walker) bucket(r walkRoot, fn func(walkEntry), loss func(walkLoss)) {
	if r.page == 0 {
		p := boltPage{flags: binary.NativeEndian.Uint16(r.inline[8:]), count: int(binary.NativeEndian.Uint16(r.inline[10:])), b: r.inline}
		if p.flags != leafPageFlag {
			loss(walkLoss{err: fmt.Errorf("inline bucket page has flags %#x, not a leaf", p.flags)})
			return
		}
		w.leaf(&p, nil, nil, fn, loss)
		return
	}
	w.walk(r.page, nil, nil, 0, fn, loss)
}

// walk visits page id, whose keys must be in [lo, hi).
func (w *walker) walk(id uint64, lo, hi []byte, depth int, fn func(walkEntry), loss func(walkLoss)) {
	if depth > maxTreeDepth {
		loss(walkLoss{from: lo, to: hi, err: fmt.Errorf("page %d: the tree is deeper than %d pages: a cycle", id, maxTreeDepth)})
		return
	}
	if owner, ok := w.reached[id]; ok {
		loss(walkLoss{from: lo, to: hi, err: fmt.Errorf("page %d is referenced twice (first as part of page %d)", id, owner)})
		return
	}
	p, err := w.bf.page(id)
	if err == nil {
		err = p.elements()
	}
	if err == nil && p.flags != branchPageFlag && p.flags != leafPageFlag {
		err = fmt.Errorf("page %d has flags %#x, not a branch or leaf page", id, p.flags)
	}
	if err == nil && p.flags == branchPageFlag && p.count == 0 {
		err = fmt.Errorf("branch page %d is empty", id)
	}
	if err != nil {
		loss(walkLoss{from: lo, to: hi, err: err})
		return
	}
	if p.badOverflow != nil {
		w.problems = append(w.problems, p.badOverflow)
	}
	for i := uint64(0); i <= p.overflow; i++ {
		if owner, ok := w.reached[id+i]; ok {
			w.problems = append(w.problems, fmt.Errorf("page %d is part of pages %d and %d", id+i, owner, id))
		}
		w.reached[id+i] = id
	}
	w.overflows += int(p.overflow)
	if p.flags == leafPageFlag {
		w.leaves++
		w.leaf(&p, lo, hi, fn, loss)
		return
	}
	w.branches++
	prev, first := lo, true
	for i := range p.count {
		key, child, err := p.branch(i)
		if err == nil && !fits(prev, key, hi, first) {
			err = fmt.Errorf("branch page %d element %d: key %x is out of order", id, i, key)
		}
		if err != nil {
			// The key is damaged; the child may not be: walk it
			// within the keys around.
			w.problems = append(w.problems, err)
			key = prev
		}
		childHi := hi
		if i+1 < p.count {
			if next, _, err := p.branch(i + 1); err == nil && fits(key, next, hi, false) {
				childHi = next
			}
		}
		w.walk(child, bytes.Clone(key), bytes.Clone(childHi), depth+1, fn, loss)
		prev, first = key, false
	}
}

// fits reports whether key may follow prev and precede hi in a bucket
// (nil: unbounded). With first, prev is the lower bound a page's keys
// start at, which its first key may equal.
func fits(prev, key, hi []byte, first bool) bool {
	c := 1
	if prev != nil {
		c = bytes.Compare(key, prev)
	}
	return (c > 0 || c == 0 && first) && (hi == nil || bytes.Compare(key, hi) < 0)
}

// leaf visits the entries of leaf page p, whose keys must be in [lo, hi).
// A key out of order, or unknown flags, are problems of the tree, but
// the entry is still visited: bbolt's cursors would still return it.
func (w *walker) leaf(p *boltPage, lo, hi []byte, fn func(walkEntry), loss func(walkLoss)) {
	if err := p.elements(); err != nil {
		loss(walkLoss{from: lo, to: hi, err: err})
		return
	}
	prev, first := lo, true
	for i := range p.count {
		flags, key, value, err := p.leaf(i)
		switch {
		case err != nil:
			loss(walkLoss{from: prev, to: hi, err: err})
			continue
		case flags&^bucketLeafFlag != 0: // bbolt reads only bit 0
			w.problems = append(w.problems, fmt.Errorf("page %d element %d: flags %#x", p.id, i, flags))
		case !fits(prev, key, hi, first):
			w.problems = append(w.problems, fmt.Errorf("page %d element %d: key %x is out of order", p.id, i, key))
		}
		fn(walkEntry{key: key, value: value, bucket: flags&bucketLeafFlag != 0})
		prev, first = key, false
	}
}

// freeCheck checks the freelist against the pages the walks reached:
// every page below the high-water mark is either reached or free, never
// both. It returns the free pages' count.
func (w *walker) freeCheck() (int, []error) {
	var errs []error
	free, err := w.bf.freePages()
	if err != nil {
		return 0, []error{err}
	}
	if fl := w.bf.meta.freelist; fl != noFreelist {
		if p, err := w.bf.page(fl); err == nil {
			for i := uint64(0); i <= p.overflow; i++ {
				w.reached[fl+i] = fl
			}
		}
	}
	isFree := make(map[uint64]bool, len(free))
	for _, id := range free {
		switch {
		case id < 2 || id >= w.bf.meta.pgid:
			errs = append(errs, fmt.Errorf("freelist: page %d is outside pages [2, %d)", id, w.bf.meta.pgid))
		case isFree[id]:
			errs = append(errs, fmt.Errorf("freelist: page %d is listed twice", id))
		}
		if _, ok := w.reached[id]; ok {
			errs = append(errs, fmt.Errorf("freelist: page %d is free and in use", id))
		}
		isFree[id] = true
	}
	var unreached []uint64
	for id := uint64(2); id < w.bf.meta.pgid; id++ {
		if _, ok := w.reached[id]; !ok && !isFree[id] {
			unreached = append(unreached, id)
		}
	}
	if len(unreached) > 0 {
		errs = append(errs, fmt.Errorf("%d pages are neither in use nor free (%s)", len(unreached), idList(unreached)))
	}
	return len(free), errs
}

// idList prints up to 10 page ids.
func idList(ids []uint64) string {
	var b bytes.Buffer
	for i, id := range ids {
		if i == 10 {
			fmt.Fprintf(&b, " and %d more", len(ids)-i)
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprint(&b, id)
	}
	return b.String()
}
