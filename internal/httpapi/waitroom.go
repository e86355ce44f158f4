package httpapi

import (
	"bytes"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/couponq/couponq/couponq"
)

// The waiting room's assets: a page template, its script, the JS client
// hosts may import, its types, a stylesheet and the strings of each
// language. No build step, no CDN.
//
//go:embed wait/page.html wait/wait.js wait/client.js wait/client.d.ts wait/wait.css wait/strings/*.json
var waitFiles embed.FS

// WaitingRoom customises the waiting-room page (see New). The zero value
// is the page as shipped: English and Korean, the default colours, no logo.
type WaitingRoom struct {
	// Strings adds languages and overrides texts, by language tag ("en",
	// "ko", "ja") and then by key; the keys and their placeholders are those
	// of the shipped English strings (wait/strings/en.json; "title",
	// "join_button", "waiting_position" with {position}...). A key a
	// language leaves out falls back to English. A new language needs at
	// least "language_name", its name in itself, for the language switch.
	Strings map[string]map[string]string
	// Theme sets CSS custom properties of the page, by name: "--accent",
	// "--bg", "--fg", "--muted", "--card", "--radius", "--font" (each with a
	// dark-scheme twin, "--accent-dark" and so on, for browsers that prefer
	// dark). Names must start with "--"; values may not hold ; { } < > \ or
	// quotes. Nil keeps the shipped colours.
	Theme map[string]string
	// LogoURL is an image shown above the title, on the host's own origin
	// (the page's Content-Security-Policy allows images from 'self' only).
	// Empty means none.
	LogoURL string
}

// waitStates are the page's states, each a section of the page.
var waitStates = []string{"signin", "unknown", "join", "upcoming", "prequeue", "waiting", "beyond", "paused",
	"in_flight", "issued", "sold_out", "duplicate", "failed", "closed", "line_full", "error"}

// waitPageHeaders keep the page to its own origin, as the live page's do;
// its join form posts back to itself.
var waitPageHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
		"img-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
	"X-Content-Type-Options": "nosniff",
	"X-Frame-Options":        "DENY",
	"Referrer-Policy":        "same-origin",
}

// waitRoom is what the handler keeps for the page.
type waitRoom struct {
	page    *template.Template
	strings map[string]map[string]string // every language, English filled in
	langs   []string                     // "en" first, then the others sorted
	assets  map[string]liveAsset         // by file name under {BasePath}/wait/
	logo    string
	cop     *http.CrossOriginProtection
}

var (
	themeName  = regexp.MustCompile(`^--[a-zA-Z0-9-]{1,64}$`)
	themeValue = regexp.MustCompile(`^[^;{}<>\\"']{0,200}$`)
	langTag    = regexp.MustCompile(`^[a-zA-Z]{2,8}(-[a-zA-Z0-9]{1,8})*$`)
)

func newWaitRoom(cfg WaitingRoom) (*waitRoom, error) {
	w := &waitRoom{strings: map[string]map[string]string{}, assets: map[string]liveAsset{}, logo: cfg.LogoURL,
		cop: http.NewCrossOriginProtection()}
	entries, err := waitFiles.ReadDir("wait/strings")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		b, err := waitFiles.ReadFile("wait/strings/" + e.Name())
		if err != nil {
			return nil, err
		}
		m := map[string]string{}
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fmt.Errorf("httpapi: waiting room strings %s: %w", e.Name(), err)
		}
		w.strings[strings.TrimSuffix(e.Name(), ".json")] = m
	}
	en := w.strings["en"]
	for lang, texts := range cfg.Strings {
		if !langTag.MatchString(lang) {
			return nil, fmt.Errorf("%w: httpapi: WaitingRoom.Strings: %q is not a language tag", couponq.ErrInvalidConfig, lang)
		}
		m := w.strings[lang]
		if m == nil {
			if texts["language_name"] == "" {
				return nil, fmt.Errorf("%w: httpapi: WaitingRoom.Strings[%q] needs \"language_name\"", couponq.ErrInvalidConfig, lang)
			}
			m = map[string]string{}
			w.strings[lang] = m
		}
		for k, v := range texts {
			if _, known := en[k]; !known {
				return nil, fmt.Errorf("%w: httpapi: WaitingRoom.Strings[%q]: unknown key %q", couponq.ErrInvalidConfig, lang, k)
			}
			m[k] = v
		}
	}
	for _, m := range w.strings {
		for k, v := range en {
			if _, ok := m[k]; !ok {
				m[k] = v
			}
		}
	}
	w.langs = slices.Sorted(maps.Keys(w.strings))
	w.langs = slices.DeleteFunc(w.langs, func(l string) bool { return l == "en" })
	w.langs = append([]string{"en"}, w.langs...)
	if cfg.LogoURL != "" {
		u, err := url.Parse(cfg.LogoURL)
		if err != nil || u.Host != "" || u.Scheme != "" || !strings.HasPrefix(u.Path, "/") {
			return nil, fmt.Errorf("%w: httpapi: WaitingRoom.LogoURL %q must be a path on the host's own origin", couponq.ErrInvalidConfig, cfg.LogoURL)
		}
	}
	var theme strings.Builder
	theme.WriteString(":root {\n")
	var dark strings.Builder
	for _, name := range slices.Sorted(maps.Keys(cfg.Theme)) {
		v := cfg.Theme[name]
		if !themeName.MatchString(name) || !themeValue.MatchString(v) {
			return nil, fmt.Errorf("%w: httpapi: WaitingRoom.Theme: %q: %q is not a CSS custom property and a plain value", couponq.ErrInvalidConfig, name, v)
		}
		if base, ok := strings.CutSuffix(name, "-dark"); ok {
			fmt.Fprintf(&dark, "  %s: %s;\n", base, v)
			continue
		}
		fmt.Fprintf(&theme, "  %s: %s;\n", name, v)
	}
	theme.WriteString("}\n")
	if dark.Len() > 0 {
		theme.WriteString("@media (prefers-color-scheme: dark) {\n  :root {\n" + dark.String() + "  }\n}\n")
	}
	page, err := waitFiles.ReadFile("wait/page.html")
	if err != nil {
		return nil, err
	}
	w.page = template.Must(template.New("page").Parse(string(page)))
	for name, ctype := range map[string]string{
		"wait.js": "text/javascript; charset=utf-8", "client.js": "text/javascript; charset=utf-8",
		"client.d.ts": "application/typescript; charset=utf-8", "wait.css": "text/css; charset=utf-8",
	} {
		b, err := waitFiles.ReadFile("wait/" + name)
		if err != nil {
			return nil, err
		}
		w.assets[name] = newAsset(b, ctype)
	}
	w.assets["theme.css"] = newAsset([]byte(theme.String()), "text/css; charset=utf-8")
	return w, nil
}

// routeWaitRoom registers the page, its join form and its assets.
func (h *Handler) routeWaitRoom() {
	base := h.cfg.BasePath
	h.mux.HandleFunc("GET "+base+"/campaigns/{campaign}/wait", h.waitPage)
	h.mux.HandleFunc("POST "+base+"/campaigns/{campaign}/wait", h.waitJoin)
	h.notAllowed(base+"/campaigns/{campaign}/wait", "GET, HEAD, POST")
	for name, a := range h.wait.assets {
		h.mux.HandleFunc("GET "+base+"/wait/"+name, a.serve)
	}
}

// waitView is what the page template renders.
type waitView struct {
	Lang, Base, Campaign, State string
	T                           map[string]string // the texts, placeholders filled in
	Langs                       []waitLang
	States                      []string
	Logo                        string
	Refresh                     bool   // not final: without JS, the page refreshes itself
	StringsJSON, StatusJSON     string // for the script: the language's strings, the last status
	OpensAt                     string // RFC 3339, for the countdown; empty if none
	Action                      string // the join form's target
}

type waitLang struct{ Tag, Name, Href string }

// waitPage serves GET {BasePath}/campaigns/{campaign}/wait: the page in the
// state the user is in.
func (h *Handler) waitPage(w http.ResponseWriter, r *http.Request) {
	h.renderWait(w, r, nil)
}

// waitJoin serves the page's join form (POST, for browsers without
// script): it admits the user and sends the browser back to the page (303);
// an admission refused renders the page in that state. Cross-origin posts
// are refused (403), so another site cannot line a visitor up.
func (h *Handler) waitJoin(w http.ResponseWriter, r *http.Request) {
	if err := h.wait.cop.Check(r); err != nil {
		h.fail(w, http.StatusForbidden, "forbidden", "cross-origin request refused", nil)
		return
	}
	user, err := h.cfg.User(r)
	if err != nil {
		h.renderWait(w, r, err)
		return
	}
	campaign := r.PathValue("campaign")
	_, err = h.cfg.Service.Admit(r.Context(), couponq.Request{Campaign: campaign, User: user})
	if err != nil && couponq.Code(err) != couponq.CodeDuplicate {
		h.renderWait(w, r, err)
		return
	}
	target := h.cfg.BasePath + "/campaigns/" + url.PathEscape(campaign) + "/wait"
	if lang := r.URL.Query().Get("lang"); lang != "" {
		target += "?lang=" + url.QueryEscape(lang)
	}
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// renderWait renders the page; admitErr is a refused admission from the
// join form, if any.
func (h *Handler) renderWait(w http.ResponseWriter, r *http.Request, admitErr error) {
	campaign := r.PathValue("campaign")
	lang := h.waitLang(r)
	texts := h.wait.strings[lang]
	v := &waitView{Lang: lang, Base: h.cfg.BasePath, Campaign: campaign, States: waitStates, Logo: h.wait.logo,
		Action: h.cfg.BasePath + "/campaigns/" + url.PathEscape(campaign) + "/wait"}
	if q := r.URL.Query().Get("lang"); q != "" {
		v.Action += "?lang=" + url.QueryEscape(q)
	}
	for _, l := range h.wait.langs {
		v.Langs = append(v.Langs, waitLang{Tag: l, Name: h.wait.strings[l]["language_name"], Href: "?lang=" + l})
	}
	status, resp, values := h.waitState(r, campaign, admitErr, v)
	b, _ := json.Marshal(texts)
	v.StringsJSON = string(b)
	if resp != nil {
		b, _ = json.Marshal(resp)
		v.StatusJSON = string(b)
	}
	values["campaign"] = campaign
	v.T = make(map[string]string, len(texts))
	for k, s := range texts {
		v.T[k] = fillText(s, values)
	}
	if values["wait"] == "" {
		v.T["waiting_wait"] = v.T["waiting_wait_unknown"]
	}
	var buf bytes.Buffer
	if err := h.wait.page.Execute(&buf, v); err != nil {
		h.log.Error("couponq: http: waiting room: template", "err", err)
		h.fail(w, http.StatusInternalServerError, "internal", "the page could not be rendered", nil)
		return
	}
	hd := w.Header()
	for k, val := range waitPageHeaders {
		hd.Set(k, val)
	}
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Cache-Control", "no-store")
	hd.Set("Vary", "Accept-Language, Cookie")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// waitState decides the page's state for the user, and the values its texts
// need; it sets v.State, v.Refresh and v.OpensAt.
func (h *Handler) waitState(r *http.Request, campaign string, admitErr error, v *waitView) (int, *StatusResponse, map[string]string) {
	values := map[string]string{}
	set := func(state string, refresh bool) { v.State, v.Refresh = state, refresh }
	ctx := r.Context()
	if admitErr != nil && errors.Is(admitErr, ErrUnauthenticated) {
		set("signin", false)
		return http.StatusUnauthorized, nil, values
	}
	user, err := h.cfg.User(r)
	if err != nil {
		set("signin", false)
		return http.StatusUnauthorized, nil, values
	}
	if err := couponq.ValidateID(campaign); err != nil {
		set("unknown", false)
		return http.StatusNotFound, nil, values
	}
	var c couponq.Campaign
	known := false
	if h.cfg.Catalog != nil {
		c, err = h.cfg.Catalog.Campaign(ctx, campaign)
		if err != nil && couponq.Code(err) != couponq.CodeUnknownCampaign {
			set("error", true)
			return http.StatusServiceUnavailable, nil, values
		}
		if known = err == nil; known {
			c = c.WithDefaults()
		}
	}
	now := time.Now()
	opensIn := func(at time.Time) {
		v.OpensAt = at.UTC().Format(time.RFC3339)
		values["countdown"] = formatWait(at.Sub(now), h.wait.strings[v.Lang])
		values["time"] = at.UTC().Format("2006-01-02 15:04 UTC")
	}
	if admitErr != nil {
		switch couponq.Code(admitErr) {
		case couponq.CodeNotOpen:
			if !c.OpensAt.IsZero() {
				opensIn(c.OpensAt.Add(-c.PreQueue))
			}
			set("upcoming", true)
			return http.StatusForbidden, nil, values
		case couponq.CodeClosed:
			set("closed", false)
			return http.StatusForbidden, nil, values
		case couponq.CodeLineFull:
			set("line_full", false)
			return http.StatusGone, nil, values
		case couponq.CodeSoldOut:
			set("sold_out", false)
			return http.StatusGone, nil, values
		case couponq.CodeUnknownCampaign, couponq.CodeInvalidID:
			set("unknown", false)
			return http.StatusNotFound, nil, values
		default:
			set("error", true)
			return http.StatusServiceUnavailable, nil, values
		}
	}
	st, err := h.cfg.Service.Status(ctx, campaign, user)
	if err != nil {
		switch couponq.Code(err) {
		case couponq.CodeUnknownCampaign:
			set("unknown", false)
			return http.StatusNotFound, nil, values
		case couponq.CodeNotFound:
		default:
			set("error", true)
			return http.StatusServiceUnavailable, nil, values
		}
		// Not in line: may they join?
		switch {
		case !c.ClosesAt.IsZero() && !now.Before(c.ClosesAt):
			set("closed", false)
		case !c.OpensAt.IsZero() && now.Before(c.OpensAt.Add(-c.PreQueue)):
			opensIn(c.OpensAt.Add(-c.PreQueue))
			set("upcoming", true)
		default:
			set("join", false)
		}
		return http.StatusOK, nil, values
	}
	resp := statusBody(st)
	decorate(&resp, c, known)
	values["position"] = strconv.FormatInt(resp.Position, 10)
	values["ahead"] = strconv.FormatInt(max(resp.Position-1, 0), 10)
	values["issuance_id"] = resp.IssuanceID
	if resp.EstimatedWaitMS > 0 {
		values["wait"] = formatWait(time.Duration(resp.EstimatedWaitMS)*time.Millisecond, h.wait.strings[v.Lang])
	}
	switch couponq.State(resp.State) {
	case couponq.StateWaiting:
		switch {
		case resp.PreQueue:
			if !c.OpensAt.IsZero() {
				opensIn(c.OpensAt)
			}
			set("prequeue", true)
		case resp.Paused:
			set("paused", true)
		case resp.BeyondStock:
			set("beyond", true)
		default:
			set("waiting", true)
		}
	case couponq.StateInFlight:
		set("in_flight", true)
	case couponq.StateIssued:
		set("issued", false)
	default:
		switch resp.Reason {
		case string(couponq.CodeSoldOut):
			set("sold_out", false)
		case string(couponq.CodeDuplicate):
			set("duplicate", false)
		default:
			set("failed", false)
		}
	}
	return http.StatusOK, &resp, values
}

// decorate adds to a status what the campaign says of it: paused while it
// waits, and the opening time of a pre-queue.
func decorate(resp *StatusResponse, c couponq.Campaign, known bool) {
	if !known || resp.State != string(couponq.StateWaiting) {
		return
	}
	resp.Paused = c.Paused
	if resp.PreQueue && !c.OpensAt.IsZero() {
		resp.OpensAt = c.OpensAt.UTC().Format(time.RFC3339)
	}
}

// decorateFromCatalog decorates a status with the campaign from the
// catalog, if the handler has one and the campaign is in it.
func (h *Handler) decorateFromCatalog(ctx context.Context, resp *StatusResponse) {
	if h.cfg.Catalog == nil || resp.State != string(couponq.StateWaiting) {
		return
	}
	c, err := h.cfg.Catalog.Campaign(ctx, resp.Campaign)
	decorate(resp, c.WithDefaults(), err == nil)
}

// waitLang picks the page's language: ?lang= if the page has it, else the
// first of Accept-Language's it has, else English.
func (h *Handler) waitLang(r *http.Request) string {
	if q := r.URL.Query().Get("lang"); q != "" {
		if _, ok := h.wait.strings[q]; ok {
			return q
		}
	}
	type pref struct {
		tag string
		q   float64
	}
	var prefs []pref
	for part := range strings.SplitSeq(r.Header.Get("Accept-Language"), ",") {
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				q = f
			}
		}
		if tag != "" && q > 0 {
			prefs = append(prefs, pref{strings.ToLower(tag), q})
		}
		if len(prefs) == 16 {
			break
		}
	}
	slices.SortStableFunc(prefs, func(a, b pref) int {
		switch {
		case a.q > b.q:
			return -1
		case a.q < b.q:
			return 1
		}
		return 0
	})
	for _, p := range prefs {
		for _, tag := range []string{p.tag, strings.Split(p.tag, "-")[0]} {
			if _, ok := h.wait.strings[tag]; ok {
				return tag
			}
		}
	}
	return "en"
}

// fillText replaces each {name} in s by values[name].
func fillText(s string, values map[string]string) string {
	if !strings.Contains(s, "{") {
		return s
	}
	var b strings.Builder
	for {
		i := strings.IndexByte(s, '{')
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		j := strings.IndexByte(s[i:], '}')
		if j < 0 {
			b.WriteString(s)
			return b.String()
		}
		b.WriteString(s[:i])
		b.WriteString(values[s[i+1:i+j]])
		s = s[i+j+1:]
	}
}

// formatWait renders a duration in the language's words, to the second
// under an hour, to the minute above.
func formatWait(d time.Duration, texts map[string]string) string {
	secs := int64((d + time.Second - 1) / time.Second)
	if secs < 1 {
		secs = 1
	}
	v := map[string]string{}
	var key string
	switch {
	case secs < 60:
		key, v["s"] = "duration_seconds", strconv.FormatInt(secs, 10)
	case secs < 3600:
		key, v["m"], v["s"] = "duration_minutes", strconv.FormatInt(secs/60, 10), strconv.FormatInt(secs%60, 10)
	case secs < 86400:
		key, v["h"], v["m"] = "duration_hours", strconv.FormatInt(secs/3600, 10), strconv.FormatInt(secs%3600/60, 10)
	default:
		key, v["d"], v["h"] = "duration_days", strconv.FormatInt(secs/86400, 10), strconv.FormatInt(secs%86400/3600, 10)
	}
	return fillText(texts[key], v)
}
