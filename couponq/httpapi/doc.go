// Package httpapi serves couponq admission and status over net/http as JSON.
//
// The handler is a plain http.Handler, so it mounts in net/http, chi, gin
// (gin.WrapH), echo (echo.WrapHandler) and the like. The user's identity
// comes from Config.User, the host's own authentication; it is never read
// from the request body.
package httpapi
