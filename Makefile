.PHONY: test quickstart
# Everything CI runs: format, vet, the cgo-free build, all tests under -race, the quickstart.
test:
	./scripts/test.sh

quickstart:
	go run ./examples/quickstart
