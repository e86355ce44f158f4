module github.com/couponq/couponq/examples/chi

go 1.26.0

require (
	github.com/couponq/couponq v0.0.0
	github.com/go-chi/chi/v5 v5.5.0
	go.uber.org/goleak v1.3.0
)

require (
	github.com/stretchr/testify v1.12.1 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
)

replace github.com/couponq/couponq => ../..
