// Types of couponq's waiting-room client ({BasePath}/wait/client.js).

/** A user's place and state, as GET .../entries/me and the status stream answer it. */
export interface Status {
  campaign: string;
  entry: number;
  state: "waiting" | "in_flight" | "issued" | "rejected";
  /** 1-based place in line while waiting. */
  position?: number;
  /** Absent when there is no estimate (paused, beyond the stock, not waiting). */
  estimated_wait_ms?: number;
  /** Set when issued. */
  issuance_id?: string;
  /** Why rejected: "sold_out", "duplicate" or "failed". */
  reason?: string;
  /** The place is past the stock that remains. */
  beyond_stock?: boolean;
  /** In the pre-queue: places are drawn at opens_at. */
  pre_queue?: boolean;
  /** Waiting on a paused campaign. */
  paused?: boolean;
  /** When a pre-queue opens (RFC 3339). */
  opens_at?: string;
}

/** What join answers: the ticket. */
export interface Ticket {
  campaign: string;
  entry: number;
  position: number;
  estimated_wait_ms?: number;
  state: string;
  /** The user had already joined: the same ticket again. */
  repeat: boolean;
  beyond_stock?: boolean;
  pre_queue?: boolean;
  status_url: string;
}

export interface Options {
  /** The public handler's BasePath ("" by default). */
  basePath?: string;
  /** Replaces globalThis.fetch. */
  fetch?: typeof fetch;
  /** Aborts the requests (and, for watch, the watch). */
  signal?: AbortSignal;
}

export interface JoinOptions extends Options {
  /** Idempotency key of this press. */
  requestId?: string;
}

export type ConnectionMode = "live" | "reconnecting" | "polling";

export interface WatchOptions extends Options {
  /** Milliseconds between polls when polling (2000). */
  pollInterval?: number;
  /** The longest backoff between failed polls, in milliseconds (30000). */
  maxBackoff?: number;
  /** How long to poll before trying the stream again, in milliseconds (20000). */
  streamRetry?: number;
  /** Never open a stream: poll only. */
  pollOnly?: boolean;
  /** Replaces globalThis.EventSource. */
  EventSource?: typeof EventSource;
  /** Told how updates arrive. */
  onConnection?: (mode: ConnectionMode) => void;
}

export interface Watch {
  /** The final status; rejects with a CouponqError when the entry or the campaign is gone. */
  done: Promise<Status>;
  /** Ends the watch. */
  stop(): void;
}

/** An error answer: HTTP status, the JSON error code ("sold_out", "line_full"...). */
export class CouponqError extends Error {
  readonly status: number;
  readonly code: string;
  readonly retryAfterMs?: number;
  /** The user's earlier ticket, on duplicate and sold_out answers. */
  readonly ticket?: Ticket;
}

export function join(campaign: string, opts?: JoinOptions): Promise<Ticket>;
export function status(campaign: string, opts?: Options): Promise<Status>;
export function isFinal(s: Status | null | undefined): boolean;
export function watch(campaign: string, onChange: (s: Status) => void, opts?: WatchOptions): Watch;
