package main

import (
	"fmt"
	"strings"

	xds "github.com/cncf/xds/go/xds/type/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/envoyproxy/envoy/contrib/golang/common/go/api"
)

// testConfig is what every test plugin's Parse produces: the plugin_config's fields as strings,
// whichever of the supported Any types carried them.
type testConfig struct {
	values   map[string]string
	counters map[string]api.CounterMetric
	gauges   map[string]api.GaugeMetric
}

func (c *testConfig) get(key string) string {
	if c == nil {
		return ""
	}
	return c.values[key]
}

func structToMap(s *structpb.Struct, out map[string]string) {
	for k, v := range s.GetFields() {
		switch x := v.GetKind().(type) {
		case *structpb.Value_StringValue:
			out[k] = x.StringValue
		case *structpb.Value_BoolValue:
			out[k] = fmt.Sprint(x.BoolValue)
		case *structpb.Value_NumberValue:
			out[k] = fmt.Sprint(x.NumberValue)
		default:
			b, _ := v.MarshalJSON()
			out[k] = string(b)
		}
	}
}

// parser accepts TypedStruct (xds), Struct and StringValue configs. A config with
// fail: "yes" is rejected (the host must turn that into a start-up error).
type parser struct {
	// metrics defined at Parse time (filter-level configs only)
	counters []string
	gauges   []string
}

func (p *parser) Parse(any *anypb.Any, callbacks api.ConfigCallbackHandler) (interface{}, error) {
	c := &testConfig{values: map[string]string{}, counters: map[string]api.CounterMetric{},
		gauges: map[string]api.GaugeMetric{}}
	if any != nil && any.GetTypeUrl() != "" {
		ts := &xds.TypedStruct{}
		st := &structpb.Struct{}
		sv := &wrapperspb.StringValue{}
		switch {
		case any.MessageIs(ts):
			if err := any.UnmarshalTo(ts); err != nil {
				return nil, err
			}
			c.values["type_url"] = ts.TypeUrl
			structToMap(ts.Value, c.values)
		case strings.HasSuffix(any.GetTypeUrl(), "/udpa.type.v1.TypedStruct"):
			// Same wire format as xds.type.v3.TypedStruct.
			if err := proto.Unmarshal(any.GetValue(), ts); err != nil {
				return nil, err
			}
			structToMap(ts.Value, c.values)
		case any.MessageIs(st):
			if err := any.UnmarshalTo(st); err != nil {
				return nil, err
			}
			structToMap(st, c.values)
		case any.MessageIs(sv):
			if err := any.UnmarshalTo(sv); err != nil {
				return nil, err
			}
			c.values["string"] = sv.Value
		default:
			return nil, fmt.Errorf("unexpected config type %s", any.GetTypeUrl())
		}
	}
	if c.values["fail"] == "yes" {
		return nil, fmt.Errorf("config says fail")
	}
	if c.values["panic"] == "yes" {
		panic("panic in Parse")
	}
	if callbacks != nil {
		for _, name := range p.counters {
			c.counters[name] = callbacks.DefineCounterMetric(name)
		}
		for _, name := range p.gauges {
			c.gauges[name] = callbacks.DefineGaugeMetric(name)
		}
	}
	return c, nil
}

// Merge: the child's values win; "chain" records the merge order (filter, vhost, route).
func (p *parser) Merge(parent interface{}, child interface{}) interface{} {
	pc := parent.(*testConfig)
	cc := child.(*testConfig)
	m := &testConfig{values: map[string]string{}, counters: pc.counters, gauges: pc.gauges}
	for k, v := range pc.values {
		m.values[k] = v
	}
	for k, v := range cc.values {
		m.values[k] = v
	}
	m.values["chain"] = pc.values["chain"] + ">" + cc.values["chain"]
	return m
}
