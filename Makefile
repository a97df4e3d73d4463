# mortar's tasks. `make` or `make help` lists them.
.DEFAULT_GOAL := help

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build the mortar binary into ./mortar
	go build -o mortar ./cmd/mortar

test: ## run the tests under the race detector (the README's command)
	go test -race ./...

quickstart: ## serve and call the quick start service
	go run ./examples/quickstart

bench: ## run mortar, net/rpc and gRPC-go side by side
	go run ./bench

fuzz: ## fuzz every wire decoder for 30s each
	go test -run='^$$' -fuzz=FuzzReadMessage -fuzztime=30s ./internal/zmtp/
	go test -run='^$$' -fuzz=FuzzHandshake -fuzztime=30s ./internal/zmtp/
	go test -run='^$$' -fuzz=FuzzReadAny -fuzztime=30s ./internal/msgpack/
	go test -run='^$$' -fuzz=FuzzSkip -fuzztime=30s ./internal/msgpack/
	go test -run='^$$' -fuzz=FuzzUnmarshalStruct -fuzztime=30s ./internal/msgpack/
	go test -run='^$$' -fuzz=FuzzDecodeEvent -fuzztime=30s ./rpc/
	go test -run='^$$' -fuzz=FuzzWSReader -fuzztime=30s ./internal/pushwire/
	go test -run='^$$' -fuzz=FuzzFrameReader -fuzztime=30s ./internal/pushwire/
	go test -run='^$$' -fuzz=FuzzParseClose -fuzztime=30s ./internal/pushwire/
	go test -run='^$$' -fuzz=FuzzDecode -fuzztime=30s ./internal/pushwire/
	go test -run='^$$' -fuzz=FuzzVerifyToken -fuzztime=30s ./internal/pushwire/
	go test -run='^$$' -fuzz=FuzzParsePermission -fuzztime=30s ./auth/
	go test -run='^$$' -fuzz=FuzzGrants -fuzztime=30s ./auth/
	go test -run='^$$' -fuzz=FuzzParsePHC -fuzztime=30s ./auth/
	go test -run='^$$' -fuzz=FuzzVerifyMalformed -fuzztime=30s ./auth/
	go test -run='^$$' -fuzz=FuzzTOTPVerify -fuzztime=30s ./auth/
	go test -run='^$$' -fuzz=FuzzThrottleKeys -fuzztime=30s ./auth/
	go test -run='^$$' -fuzz=FuzzVerifyToken -fuzztime=30s ./auth/
	go test -run='^$$' -fuzz=FuzzEscapePart -fuzztime=30s ./auth/
	go test -run='^$$' -fuzz=FuzzParseAPIKey -fuzztime=30s ./internal/authwire/

interop-deps: ## install the interop peers (Debian pyzmq, zerorpc-node)
	apt-get install -y python3-zmq python3-msgpack
	cd rpc/testdata/interop/node && npm ci

ci: ## run what CI runs
	bash .ci/run

.PHONY: help build test quickstart bench fuzz interop-deps ci
