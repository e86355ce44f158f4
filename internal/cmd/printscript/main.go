// Command printscript prints the Redis admission Lua script, so tools such
// as redis-benchmark run exactly the script the Queue runs.
package main

import (
	"fmt"

	"github.com/couponq/couponq/internal/redisline"
)

func main() { fmt.Print(redisline.AdmitScript()) }
