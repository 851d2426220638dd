module corral.local/testplugins

go 1.25.0

require github.com/envoyproxy/envoy v1.39.0

require google.golang.org/protobuf v1.36.11 // indirect
