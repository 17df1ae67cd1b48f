package control

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/wattrec/wattrec/chart"
	"github.com/wattrec/wattrec/export"
	"github.com/wattrec/wattrec/query"
	"github.com/wattrec/wattrec/report"
	"github.com/wattrec/wattrec/store"
)

// APIVersion is the version of the wire format below: every path starts
// with /v1/, and PingResponse.API carries it. A change that an older
// client or recorder would misread gets a new version.
const APIVersion = 1

// PingResponse answers GET /v1/ping.
type PingResponse struct {
	API int    `json:"api"` // APIVersion
	DB  string `json:"db"`  // the file the recorder holds
	PID int    `json:"pid"`
}

// Selection is a read's time range and series on the wire. Bounds are
// "", "start", "end" or Unix ms in decimal (query.Bound's text form);
// devices are "gpu", "gpu:0", "cpu:1", ... (query.DeviceFilter's).
type Selection struct {
	From      query.Bound          `json:"from"`
	To        query.Bound          `json:"to"`
	Endpoints []string             `json:"endpoints,omitempty"`
	Aliases   map[string]string    `json:"endpoint_aliases,omitempty"`
	Devices   []query.DeviceFilter `json:"devices,omitempty"`
}

func selectionOf(f query.Filter) Selection {
	return Selection{From: f.Range.From, To: f.Range.To, Endpoints: f.Endpoints, Aliases: f.EndpointAliases, Devices: f.Devices}
}

func (s Selection) filter() query.Filter {
	return query.Filter{Range: query.TimeRange{From: s.From, To: s.To}, Endpoints: s.Endpoints, EndpointAliases: s.Aliases, Devices: s.Devices}
}

// QueryRequest is the body of POST /v1/query: an energy report (see
// query.Options), answered in Format.
type QueryRequest struct {
	Selection
	By          string `json:"by,omitempty"`
	EveryMs     int64  `json:"every_ms,omitempty"`
	CPUPeriodMs int64  `json:"cpu_period_ms,omitempty"`
	GPUPeriodMs int64  `json:"gpu_period_ms,omitempty"`
	Window      string `json:"window,omitempty"` // a mark name
	Method      string `json:"method,omitempty"`
	Format      string `json:"format,omitempty"`
}

func queryRequest(opt query.Options) QueryRequest {
	return QueryRequest{Selection: selectionOf(opt.Filter), By: opt.By, EveryMs: opt.EveryMs, CPUPeriodMs: opt.CPUPeriodMs, GPUPeriodMs: opt.GPUPeriodMs,
		Window: opt.Window, Method: opt.Method, Format: opt.Format}
}

func (r QueryRequest) options() query.Options {
	return query.Options{Filter: r.filter(), By: r.By, EveryMs: r.EveryMs, CPUPeriodMs: r.CPUPeriodMs, GPUPeriodMs: r.GPUPeriodMs,
		Window: r.Window, Method: r.Method, Format: r.Format}
}

// InfoRequest is the body of POST /v1/info: the file's summary in Format
// (query.FormatTable, the default, or query.FormatJSON).
type InfoRequest struct {
	Format string `json:"format,omitempty"`
}

// ExportRequest is the body of POST /v1/export: an export (see
// export.Request), answered as the file's bytes.
type ExportRequest struct {
	Selection
	Format       string `json:"format,omitempty"`
	GridMs       int64  `json:"grid_ms,omitempty"`
	Version      string `json:"version,omitempty"` // the wattrec version for the file's metadata
	RowGroupRows int64  `json:"row_group_rows,omitempty"`
	CPUPeriodMs  int64  `json:"cpu_period_ms,omitempty"`
}

func exportRequest(req export.Request) ExportRequest {
	return ExportRequest{Selection: selectionOf(req.Filter), Format: req.Format, GridMs: req.GridMs,
		Version: req.Options.Version, RowGroupRows: req.Options.RowGroupRows, CPUPeriodMs: req.Options.CPUPeriodMs}
}

func (r ExportRequest) request() export.Request {
	return export.Request{Filter: r.filter(), Format: r.Format, GridMs: r.GridMs,
		Options: export.Options{Version: r.Version, RowGroupRows: r.RowGroupRows, CPUPeriodMs: r.CPUPeriodMs}}
}

// PlotRequest is the body of POST /v1/plot: a power timeline (see
// chart.Request), answered as the picture's bytes.
type PlotRequest struct {
	Selection
	By     string `json:"by,omitempty"`
	Window string `json:"window,omitempty"` // a mark name
	Format string `json:"format,omitempty"` // svg or png
	Width  int    `json:"width,omitempty"`  // pixels
	Height int    `json:"height,omitempty"`
	UTC    bool   `json:"utc,omitempty"` // else the recorder's local zone
}

func plotRequest(req chart.Request) PlotRequest {
	return PlotRequest{Selection: selectionOf(req.Filter), By: req.By, Window: req.Window, Format: req.Format,
		Width: req.Width, Height: req.Height, UTC: req.UTC}
}

func (r PlotRequest) request() chart.Request {
	return chart.Request{Filter: r.filter(), By: r.By, Window: r.Window, Format: r.Format, Width: r.Width, Height: r.Height, UTC: r.UTC}
}

// ReportRequest is the body of POST /v1/report: the HTML report of a
// recording (see report.Request), answered as the file's bytes.
type ReportRequest struct {
	Selection
	UTC         bool   `json:"utc,omitempty"`
	Version     string `json:"version,omitempty"`      // the wattrec version for the report's footer
	GeneratedMs int64  `json:"generated_ms,omitempty"` // when it was asked for, Unix ms; 0 = left out
}

func reportRequest(req report.Request) ReportRequest {
	r := ReportRequest{Selection: selectionOf(req.Filter), UTC: req.UTC, Version: req.Version}
	if !req.Generated.IsZero() {
		r.GeneratedMs = req.Generated.UnixMilli()
	}
	return r
}

func (r ReportRequest) request() report.Request {
	req := report.Request{Filter: r.filter(), UTC: r.UTC, Version: r.Version}
	if r.GeneratedMs != 0 {
		req.Generated = time.UnixMilli(r.GeneratedMs)
	}
	return req
}

// Mark actions.
const (
	MarkBegin = "begin" // open a window named Name now
	MarkEnd   = "end"   // close the latest open window named Name now
	MarkAdd   = "add"   // a window [FromMs, ToMs) given outright
)

// MarkRequest is the body of POST /v1/marks, answered with the mark as
// stored (store.Mark's JSON). Example: {"action":"begin","name":"epoch"}.
type MarkRequest struct {
	Action string `json:"action"`
	Name   string `json:"name"`
	FromMs int64  `json:"from_ms,omitempty"` // MarkAdd only
	ToMs   int64  `json:"to_ms,omitempty"`
	Source string `json:"source,omitempty"` // who asked: "cli", "run", a script's name
}

// GET /v1/marks?name=NAME answers with a JSON array of store.Mark.

// ErrorResponse is the body of every answer that is not 200, and the
// content of the error trailers of an answer that failed after it began.
type ErrorResponse struct {
	Error string `json:"error"`          // the message, as the error's Error()
	Code  string `json:"code,omitempty"` // which sentinel it matches, from wireErrors
}

// Trailers of a streamed answer: the error of one that failed after its
// first byte, and the warnings of a query (a JSON list of strings; they
// are in a JSON report too, but not in a table or CSV).
const (
	errorTrailer     = "X-Wattrec-Error"
	errorCodeTrailer = "X-Wattrec-Error-Code"
	warningsTrailer  = "X-Wattrec-Warnings"
)

// wireErrors are the sentinels an error can carry through the socket:
// the server answers with the status and code of the first entry whose
// errs[0] the error matches, and the client returns an error that
// matches every one of that entry's errs again.
var wireErrors = []struct {
	code   string
	status int
	errs   []error
}{
	{"too_large", http.StatusBadRequest, []error{query.ErrTooLarge, query.ErrInvalid}},
	{"no_window", http.StatusBadRequest, []error{query.ErrNoWindow, query.ErrInvalid}},
	{"no_series", http.StatusBadRequest, []error{chart.ErrNoSeries, query.ErrInvalid}},
	{"no_data", http.StatusBadRequest, []error{chart.ErrNoData, query.ErrInvalid}},
	{"too_many_lines", http.StatusBadRequest, []error{chart.ErrTooManyLines, query.ErrInvalid}},
	{"chart_format", http.StatusBadRequest, []error{chart.ErrFormat, query.ErrInvalid}},
	{"invalid", http.StatusBadRequest, []error{query.ErrInvalid}},
	{"invalid_mark", http.StatusBadRequest, []error{store.ErrInvalidMark}},
	{"not_found", http.StatusNotFound, []error{store.ErrNotFound}},
	{"no_open_mark", http.StatusConflict, []error{store.ErrNoOpenMark}},
	{"corrupt", http.StatusInternalServerError, []error{store.ErrCorrupt}},
	{"busy", http.StatusServiceUnavailable, []error{ErrBusy}},
	{"canceled", http.StatusServiceUnavailable, []error{context.Canceled}},
	{"deadline", http.StatusServiceUnavailable, []error{context.DeadlineExceeded}},
}

// classify returns the status and code for err.
func classify(err error) (int, string) {
	for _, we := range wireErrors {
		if errors.Is(err, we.errs[0]) {
			return we.status, we.code
		}
	}
	return http.StatusInternalServerError, ""
}

// remoteError is an error the recorder answered with: its message, and
// the sentinels its code names, if any.
type remoteError struct {
	msg       string
	sentinels []error
}

func (e *remoteError) Error() string   { return e.msg }
func (e *remoteError) Unwrap() []error { return e.sentinels }

func fromWire(r ErrorResponse) error {
	e := &remoteError{msg: r.Error}
	for _, we := range wireErrors {
		if we.code == r.Code {
			e.sentinels = we.errs
		}
	}
	return e
}
