package recording

import (
	"context"
	"io"

	"github.com/wattrec/wattrec/export"
)

// ExportFiles writes each of outs from rd: to its path atomically
// (export.WriteFile, replacing an existing file only with force), or to
// stdout when the path is empty. On a local file it shows a progress bar
// on progress; a recorder does not report progress.
func ExportFiles(ctx context.Context, rd Reader, outs []export.Output, force bool, stdout, progress io.Writer) error {
	for _, o := range outs {
		label := "export"
		if o.Request.GridMs > 0 {
			label = "grid"
		}
		write := func(w io.Writer) error {
			req := o.Request
			if _, local := rd.(*File); local {
				bar := export.NewProgressBar(progress, label)
				defer bar.Finish()
				req.Options.Progress = bar.Update
			}
			return rd.Export(ctx, w, req)
		}
		var err error
		if o.Path == "" {
			err = write(stdout)
		} else {
			err = export.WriteFile(o.Path, force, write)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
