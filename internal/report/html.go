package report

import (
	"html/template"
	"io"
	"math"
	"slices"
)

// WriteHTML writes the report as one self-contained HTML page (inline CSS
// and script, no fetches): for each log the verification banner, summary
// counts, a timeline of the tool calls and the tree. It renders without
// script; the script only adds expand/collapse-all buttons.
func (rep *Report) WriteHTML(w io.Writer) error {
	return pageTemplate.Execute(w, rep)
}

// timelineRow is one bar of a session's timeline, in percent of its span.
type timelineRow struct {
	Label, Title, Anchor string
	Left, Width          float64
	Credential, Failed   bool
}

type timelineMark struct {
	Left, Width float64
	Title       string
}

// span is the time the timeline covers: the session, or what its records show.
func (s *Session) span() int64 {
	end := s.DurationNs
	for _, c := range s.ToolCalls {
		end = max(end, c.StartNs+c.DurationNs)
	}
	for _, e := range s.Events {
		end = max(end, e.AtNs)
	}
	return max(end, 1)
}

// fileRow is one file of a process's table; Label only on a group's first row.
type fileRow struct {
	Label  string
	Failed bool
	*File
}

// fileRows orders a process's files as the text report groups them:
// successes by access, then failures by errno.
func fileRows(files []*File) []fileRow {
	var rows []fileRow
	for _, access := range accessOrder {
		label := access
		for _, f := range files {
			if f.Access == access && f.Errno == "" {
				rows = append(rows, fileRow{label, false, f})
				label = ""
			}
		}
	}
	var errnos []string
	for _, f := range files {
		if f.Errno != "" && !slices.Contains(errnos, f.Errno) {
			errnos = append(errnos, f.Errno)
		}
	}
	for _, errno := range errnos {
		label := errno
		for _, f := range files {
			if f.Errno == errno {
				rows = append(rows, fileRow{label, true, f})
				label = ""
			}
		}
	}
	return rows
}

func percent(ns, span int64) float64 {
	return math.Round(min(100, max(0, float64(ns)*100/float64(span)))*100) / 100
}

func timelineRows(s *Session) []timelineRow {
	span := s.span()
	var rows []timelineRow
	for _, c := range s.ToolCalls {
		label := argvText(c.Argv)
		switch {
		case len(c.Argv) > 0:
			if l := c.ExeLabel(); l != "" {
				label = l + " " + label
			}
		case len(c.ForkOf) > 0:
			label = "(fork of " + argvText(c.ForkOf) + ")"
		default:
			label = "(not in the log)"
		}
		rows = append(rows, timelineRow{
			Label: label, Anchor: "tc-" + c.ID,
			Title: "+" + seconds(c.StartNs) + ", took " + seconds(c.DurationNs),
			Left:  percent(c.StartNs, span), Width: max(0.6, percent(c.DurationNs, span)),
			Credential: c.Credential, Failed: c.Exit != nil && (c.Exit.Signal != "" || c.Exit.Code != nil && *c.Exit.Code != 0),
		})
	}
	return rows
}

func timelineMarks(s *Session) []timelineMark {
	span := s.span()
	var marks []timelineMark
	for _, e := range s.Events {
		width := 0.0
		if e.UntilNs > e.AtNs {
			width = percent(e.UntilNs-e.AtNs, span)
		}
		marks = append(marks, timelineMark{Left: percent(e.AtNs, span), Width: max(0.3, width), Title: e.Type + " +" + seconds(e.AtNs) + ": " + display(e.Text)})
	}
	return marks
}

var pageTemplate = template.Must(template.New("page").Funcs(template.FuncMap{
	"display":  display,
	"argv":     argvText,
	"seconds":  seconds,
	"exit":     exitText,
	"count":    count,
	"rows":     timelineRows,
	"marks":    timelineMarks,
	"lost":     lostText,
	"filerows": fileRows,
}).Parse(pageHTML))

const pageHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>agenttrace report</title>
<style>
:root { --fg:#1d2430; --muted:#667085; --line:#d9dee7; --ok:#067647; --okbg:#ecfdf3; --bad:#b42318; --badbg:#fef3f2; --warn:#b54708; --accent:#175cd3; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg); background: #f7f8fa; }
h1 { font-size: 20px; margin: 0 0 16px; }
h2 { font-size: 16px; margin: 24px 0 8px; }
h3 { font-size: 13px; margin: 16px 0 6px; color: var(--muted); text-transform: uppercase; letter-spacing: .04em; }
code, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 12.5px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 16px 20px; margin-bottom: 20px; }
.card > h2:first-child { margin-top: 0; }
.legend { color: var(--muted); font-size: 12px; margin: 4px 0 0; }
.legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin: 0 4px 0 10px; vertical-align: -1px; }
.verify { border-radius: 8px; padding: 12px 16px; font-weight: 600; margin-bottom: 12px; word-break: break-all; }
.verify.ok { background: var(--okbg); color: var(--ok); border: 1px solid #abefc6; }
.verify.bad { background: var(--badbg); color: var(--bad); border: 1px solid #fecdca; }
.problem { color: var(--warn); }
.counts { display: flex; flex-wrap: wrap; gap: 10px; margin: 8px 0; }
.count { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 8px 14px; min-width: 110px; }
.count b { display: block; font-size: 20px; }
.count span { color: var(--muted); font-size: 12px; }
.count.alert { border-color: #fecdca; background: var(--badbg); color: var(--bad); }
.meta td { padding: 2px 12px 2px 0; vertical-align: top; }
.meta td:first-child { color: var(--muted); }
.timeline { position: relative; }
.trow { display: grid; grid-template-columns: minmax(160px, 34%) 1fr; gap: 10px; align-items: center; margin: 3px 0; }
.tlabel { white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.tlabel a { color: var(--fg); text-decoration: none; }
.track { position: relative; height: 16px; background: #eef1f5; border-radius: 4px; }
.bar { position: absolute; top: 2px; height: 12px; border-radius: 3px; background: var(--accent); }
.bar.cred { background: var(--bad); }
.bar.failed { background: var(--warn); }
.mark { position: absolute; top: 2px; height: 12px; border-radius: 2px; background: var(--bad); opacity: .75; }
.axis { display: grid; grid-template-columns: minmax(160px, 34%) 1fr; gap: 10px; color: var(--muted); font-size: 11px; }
.axis div:last-child { display: flex; justify-content: space-between; }
ul.tree, ul.tree ul { list-style: none; margin: 0; padding-left: 18px; }
ul.tree { padding-left: 0; }
ul.tree li { margin: 2px 0; }
details > summary { cursor: pointer; }
.tc > details > summary { font-weight: 600; padding: 6px 8px; background: #f2f6fe; border-radius: 6px; }
.tc.cred > details > summary { background: var(--badbg); }
.pid { color: var(--accent); font-weight: 600; }
.muted { color: var(--muted); }
.cred-line { color: var(--bad); font-weight: 600; }
.tag { display: inline-block; background: var(--bad); color: #fff; border-radius: 4px; padding: 0 6px; font-size: 11px; font-weight: 600; margin-left: 6px; }
.failed { color: var(--warn); }
.event { color: var(--bad); font-weight: 600; padding: 6px 8px; }
table.files { border-collapse: collapse; margin: 2px 0 4px; }
table.files td { padding: 0 10px 0 0; vertical-align: top; }
.buttons { margin: 6px 0 10px; }
.buttons button { font: inherit; font-size: 12px; padding: 2px 10px; border: 1px solid var(--line); background: #fff; border-radius: 6px; cursor: pointer; }
</style>
</head>
<body>
<h1>agenttrace report</h1>
{{- if .Filter}}<p class="muted">filter: {{display .Filter}}</p>{{end}}
{{- range .Logs}}
<section class="log">
<div class="verify {{if .Verify.Intact}}ok{{else}}bad{{end}}" id="verify">{{if .Verify.Intact}}&#10004; {{else}}&#10008; {{end}}{{.VerifyLine}}</div>
{{- range .Problems}}<p class="problem">problem: {{display .}}</p>{{end}}
<div class="counts">
<div class="count"><b>{{.Summary.Sessions}}</b><span>sessions</span></div>
<div class="count"><b>{{.Summary.ToolCalls}}</b><span>tool calls</span></div>
<div class="count"><b>{{.Summary.Processes}}</b><span>processes</span></div>
<div class="count"><b>{{.Summary.FilesOpened}}</b><span>files opened</span></div>
<div class="count"><b>{{.Summary.FailedOpens}}</b><span>failed opens</span></div>
<div class="count"><b>{{.Summary.Connections}}</b><span>connections</span></div>
<div class="count{{if .Summary.CredentialAccess}} alert{{end}}"><b>{{.Summary.CredentialAccess}}</b><span>credential access</span></div>
<div class="count{{if .Summary.LostEvents}} alert{{end}}"><b>{{.Summary.LostEvents}}</b><span>events lost</span></div>
</div>
{{- range .Sessions}}
<div class="card session">
<h2>Session {{display .Time}}</h2>
<table class="meta">
<tr><td>command</td><td><code>{{argv .Argv}}</code></td></tr>
<tr><td>host</td><td>{{display .Host}} · agenttrace pid {{.AgenttracePid}} · cgroup <code>{{display .Cgroup}}</code></td></tr>
<tr><td>ended</td><td>{{if .Ended}}exit {{.ExitCode}} after {{seconds .DurationNs}}{{if .LeftRunning}}; {{.LeftRunning}} processes left running were killed{{end}}{{if .TaintedRunning}}; <span class="cred-line">{{.TaintedRunning}} processes outside the session it took over were still running</span>{{end}}{{if .Lost}}; <span class="cred-line">EVENTS LOST: {{lost .Lost}}</span>{{end}}{{else}}<span class="problem">no stop record</span>{{end}}</td></tr>
{{- if not .Attributed}}<tr><td>note</td><td>the tracer did not attribute tool calls in this log: computed from the records' ids</td></tr>{{end}}
</table>
<h3>Timeline of tool calls</h3>
<div class="timeline">
{{- range rows .}}
<div class="trow"><div class="tlabel mono"><a href="#{{.Anchor}}" title="{{.Label}}">{{.Label}}</a></div><div class="track"><div class="bar{{if .Credential}} cred{{else if .Failed}} failed{{end}}" style="left:{{.Left}}%;width:{{.Width}}%" title="{{.Title}}"></div></div></div>
{{- else}}<p class="muted">no tool calls</p>{{end}}
{{- $marks := marks .}}{{if $marks}}
<div class="trow"><div class="tlabel muted">gaps, freezes</div><div class="track">{{range $marks}}<div class="mark" style="left:{{.Left}}%;width:{{.Width}}%" title="{{.Title}}"></div>{{end}}</div></div>{{end}}
<div class="axis"><div></div><div><span>+0s</span><span>+{{seconds .DurationNs}}</span></div></div>
</div>
<p class="legend">bar: from the fork to the last exit of the tool call's processes<i style="background:#175cd3"></i>ok<i style="background:#b54708"></i>failed or killed<i style="background:#b42318"></i>opened credential material</p>
<h3>Tree</h3>
<div class="buttons"><button type="button" data-open="1">expand all</button> <button type="button" data-open="0">collapse all</button></div>
<ul class="tree">
{{- if .Agent}}
<li class="agent"><details open><summary><b>agent</b> <span class="muted">the command and the programs it exec'd (records without tool_call)</span></summary>
<ul>{{range .Agent}}{{template "proc" .}}{{end}}</ul></details></li>
{{- end}}
{{- range .Items}}{{if .Event}}{{with .Event}}
<li class="event">&#9888; {{.Type}} +{{seconds .AtNs}}{{if gt .UntilNs .AtNs}} to +{{seconds .UntilNs}}{{end}}: {{display .Text}} <span class="muted">(seq {{.Seq}})</span></li>
{{- end}}{{else}}{{with .ToolCall}}
<li class="tc{{if .Credential}} cred{{end}}" id="tc-{{.ID}}"><details open><summary>tool call <span class="mono">{{.ID}}</span> · +{{seconds .StartNs}} · took {{seconds .DurationNs}} · {{if .Exit}}{{exit .Exit}}{{else}}no exit recorded{{end}}{{if .Credential}}<span class="tag">credential_access</span>{{end}}<br>
{{if .Argv}}<code>$ {{with .ExeLabel}}<span class="failed">{{display .}}</span> {{end}}{{argv .Argv}}</code>{{else if .ForkOf}}<span class="muted">(no exec recorded: a fork of <code>{{argv .ForkOf}}</code>)</span>{{else}}<span class="problem">(what it ran is not in the log: its fork and first exec records are missing)</span>{{end}}</summary>
<ul>{{range .Processes}}{{template "proc" .}}{{end}}</ul></details></li>
{{- end}}{{end}}{{end}}
</ul>
</div>
{{- end}}
</section>
{{- end}}
<script>
document.querySelectorAll("button[data-open]").forEach(function (b) {
  b.addEventListener("click", function () {
    var open = b.getAttribute("data-open") === "1";
    b.closest(".session").querySelectorAll("details").forEach(function (d) { d.open = open; });
  });
});
</script>
</body>
</html>
{{define "proc"}}<li><details open><summary><span class="pid">pid {{.Pid}}</span> <code>{{range $i, $img := .Images}}{{if $i}} → exec {{end}}{{with $img.Label}}<span class="failed">{{display .}}</span> {{end}}{{argv $img.Argv}}{{else}}(no exec recorded: {{display .Comm}}){{end}}</code> · {{if .Exit}}{{exit .Exit}}{{else}}no exit recorded{{end}}{{if .Cgroup}} · in cgroup <code>{{display .Cgroup}}</code>{{end}}</summary>
{{- range .Credentials}}
<div class="cred-line">CREDENTIAL {{.Access}} <code>{{display .Path}}</code>{{if .Opened}} → <code>{{display .Opened}}</code>{{end}}{{count .Count}}{{if .Errno}} (failed: {{.Errno}}){{end}}<span class="tag">{{range .Tags}}{{.}}{{end}}</span></div>
{{- end}}
{{- range .Connects}}
<div>connect <code>{{display .Address}}</code> <span{{if ne .Result "ok"}} class="failed"{{end}}>{{.Result}}</span>{{count .Count}}</div>
{{- end}}
{{- range .Net}}
<div>{{.Kind}} <code>{{display .Text}}</code> <span{{if ne .Result "ok"}} class="failed"{{end}}>{{display .Result}}</span>{{count .Count}}</div>
{{- end}}
{{- if .Files}}
<table class="files">
{{- range filerows .Files}}
<tr><td class="{{if .Failed}}failed{{else}}muted{{end}}">{{.Label}}</td><td><code>{{display .Path}}</code>{{if .Opened}} → <code>{{display .Opened}}</code>{{end}}{{if .Failed}} <span class="muted">{{.Access}}</span>{{end}}{{count .Count}}</td></tr>
{{- end}}
</table>
{{- end}}
{{- range .ExecFailed}}
<div class="failed">exec failed {{.Errno}} <code>{{display .Filename}}</code> <code>{{.ArgvText}}</code></div>
{{- end}}
{{- range .Actions}}
<div{{if or .Alert .Tags}} class="cred-line"{{end}}>{{.Type}} <code>{{display .Text}}</code>{{if .Errno}} <span class="failed">(failed: {{.Errno}})</span>{{end}}</div>
{{- end}}
{{- if .Children}}<ul>{{range .Children}}{{template "proc" .}}{{end}}</ul>{{end}}
</details></li>{{end}}
`
