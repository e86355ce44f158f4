// Package node is couponq's one entry point: a Node runs admission, the
// scheduler and the issuer, holds the operators' verbs on campaigns, and
// serves the public and admin HTTP handlers and the health probes.
//
// With nothing given, a node runs in this process on the in-memory
// backends:
//
//	n, err := node.New(node.Config{})
//	if err != nil { ... }
//	if err := n.Start(ctx); err != nil { ... }
//	defer n.Stop(ctx)
//
//	_, err = n.CreateCampaign(ctx, couponq.Campaign{ID: "spring-sale", Stock: 1000})
//	ticket, err := n.Admit(ctx, couponq.Request{Campaign: "spring-sale", User: userID})
//	status, err := n.Status(ctx, "spring-sale", userID)
//
// Admit answers at once with the user's entry and place in line; the
// scheduler moves each campaign's line at its BatchSize per Interval, the
// issuer asks the Store, and Status reports the outcome (issued, or
// rejected with a reason such as sold_out).
//
// # One value per system
//
// Config takes one value for each external system, and flat tuning fields
// that name no backend:
//
//   - Backend holds the lines, the campaigns, the locks and V1's counters:
//     redisq.New's for a fleet (one Redis, Sentinel or a Cluster), the
//     zero Backend for memory.New() in one process.
//   - Transport carries entries from the scheduler to the issuers:
//     kafkadispatch.New's, or nil for the in-process one.
//   - Store decides and keeps issuances, enforcing the stock and the
//     per-user limit: pgstore or redisstore, or nil for memory.NewStore()
//     with the in-memory Backend.
//   - Observer hears every admission, tick, decision and Store call, for
//     metrics: prom.New's or metrics.NewExpvar's. A LineObserver is handed
//     the node's Lines too, so its line gauges count every sub-line of a
//     sharded campaign.
//   - Tracer traces each entry's journey: tracing.New's.
//
// The node composes the rest itself: the sub-line wrapper for sharded
// campaigns, the campaign cache (Config.CacheTTL), the line stats the
// handlers and gauges read.
//
// # Campaigns
//
// Campaigns live in the Backend's registry, shared by every node.
// CreateCampaign, UpdateCampaign, PauseCampaign and ResumeCampaign change
// them at runtime; CloseCampaign ends admission (entries already admitted
// are still served); RetireCampaign puts a closed or sold-out campaign away
// once nobody waits, keeping its users' outcomes for a retention. A
// campaign the node has no backends for — V1 (couponq.ValidateFirst)
// without a Backend Tally or on an API-only node with the in-process
// Transport, a pre-queue on a Queue that cannot seat one — is refused when
// it is created or updated, with an error wrapping couponq.ErrUnsupported,
// so nothing is created that admission would then refuse.
//
// # HTTP
//
// Handler serves users (join the line, read the status, follow it live);
// it takes the user from the host's own authentication (HandlerConfig.User).
// AdminHandler serves operators (the campaign verbs, a live page) behind a
// required AdminConfig.Authorize. Mount them apart:
//
//	public, err := n.Handler(node.HandlerConfig{User: userFromSession, BasePath: "/api"})
//	admin, err := n.AdminHandler(node.AdminConfig{Authorize: operatorsOnly, BasePath: "/admin"})
//	mux.Handle("/api/", public)
//	mux.Handle("/admin/", admin)
//
// Their streams (the users' status streams, the admin live stream) end
// when the http.Server serving them shuts down and when the node stops:
// neither Server.Shutdown nor Stop waits on an open stream.
//
// Liveness and Readiness are the probes. Readiness checks every backend
// the node was given that can answer a ping — the Backend (named by its
// Name), the Store ("store"), the Transport ("transport") — and
// Config.ReadinessChecks, and answers 503 naming each one that fails.
// Serve both where only the orchestrator reaches them.
//
// # Roles
//
// One binary runs any part of the service: RoleAPI serves admission,
// status and the handlers; RoleWorker runs the scheduler (one leader per
// fleet drives every campaign with people waiting) and the issuer. The
// zero Roles is both; ParseRoles reads them from a flag ("api", "worker",
// "all"). A fleet shares one Backend, Transport and Store across all its
// nodes; an API-only node needs no Store.
package node
