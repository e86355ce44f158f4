// Package issuing is the issuer a worker node runs; package issuer's doc
// describes it, and holds the events it reports and its DeadLetter.
package issuing
