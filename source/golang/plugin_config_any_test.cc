#include "source/golang/plugin_config_any.h"

#include <google/protobuf/any.pb.h>
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/wrappers.pb.h>
#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <gtest/gtest.h>

namespace corral::golang {
namespace {

namespace pb = google::protobuf;

pb::Any any(const std::string& yaml) {
  auto bytes = serializeAnyFromYaml(YAML::Load(yaml), "plugin_config");
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  pb::Any a;
  EXPECT_TRUE(a.ParseFromString(bytes.ok() ? *bytes : ""));
  return a;
}

TEST(PluginConfigAnyTest, TypedStructCarriesTypeUrlAndStruct) {
  pb::Any a = any(R"(
"@type": type.googleapis.com/xds.type.v3.TypedStruct
type_url: type.googleapis.com/my.Config
value: {name: alice, n: 3, on: true, quoted: "3", list: [1, x], nested: {k: ~}}
)");
  EXPECT_EQ(a.type_url(), "type.googleapis.com/xds.type.v3.TypedStruct");
  // TypedStruct{type_url=1, value=2} has Struct's wire shape for field 2 plus a string field 1:
  // decode it as a Struct-bearing message by hand through a Value's struct field numbers.
  pb::io::ArrayInputStream in(a.value().data(), static_cast<int>(a.value().size()));
  pb::io::CodedInputStream coded(&in);
  std::string type_url, value;
  uint32_t tag;
  while ((tag = coded.ReadTag()) != 0) {
    uint32_t len;
    ASSERT_TRUE(coded.ReadVarint32(&len));
    ASSERT_TRUE(coded.ReadString(tag >> 3 == 1 ? &type_url : &value, static_cast<int>(len)));
  }
  EXPECT_EQ(type_url, "type.googleapis.com/my.Config");
  pb::Struct s;
  ASSERT_TRUE(s.ParseFromString(value));
  EXPECT_EQ(s.fields().at("name").string_value(), "alice");
  EXPECT_EQ(s.fields().at("n").number_value(), 3);
  EXPECT_TRUE(s.fields().at("on").bool_value());
  EXPECT_EQ(s.fields().at("quoted").string_value(), "3");
  EXPECT_EQ(s.fields().at("list").list_value().values(1).string_value(), "x");
  EXPECT_TRUE(s.fields().at("nested").struct_value().fields().at("k").has_null_value());
}

TEST(PluginConfigAnyTest, StructAndStringValue) {
  pb::Any a = any(R"({"@type": type.googleapis.com/google.protobuf.Struct, value: {a: b}})");
  pb::Struct s;
  ASSERT_TRUE(a.UnpackTo(&s));
  EXPECT_EQ(s.fields().at("a").string_value(), "b");

  a = any(R"({"@type": type.googleapis.com/google.protobuf.StringValue, value: hello})");
  pb::StringValue v;
  ASSERT_TRUE(a.UnpackTo(&v));
  EXPECT_EQ(v.value(), "hello");
}

TEST(PluginConfigAnyTest, NoConfigIsAnEmptyAny) {
  auto bytes = serializeAnyFromYaml(YAML::Node(), "plugin_config");
  ASSERT_TRUE(bytes.ok());
  EXPECT_TRUE(bytes->empty());
}

TEST(PluginConfigAnyTest, ErrorsNameThePath) {
  auto bad = serializeAnyFromYaml(YAML::Load(R"({"@type": foo.Bar})"), "x.plugin_config");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("x.plugin_config.@type"), std::string::npos);
  bad = serializeAnyFromYaml(
      YAML::Load(R"({"@type": type.googleapis.com/xds.type.v3.TypedStruct, valu: {}})"),
      "x.plugin_config");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("x.plugin_config.valu"), std::string::npos);
  EXPECT_FALSE(serializeAnyFromYaml(YAML::Load("[1]"), "p").ok());
  EXPECT_FALSE(serializeAnyFromYaml(YAML::Load("{a: b}"), "p").ok());
}

TEST(PluginConfigAnyTest, MergeValueIntoStruct) {
  pb::Value v;
  v.set_string_value("x");
  std::string target;
  ASSERT_TRUE(mergeValueIntoStruct(&target, "k", v.SerializeAsString()));
  v.set_number_value(2);
  ASSERT_TRUE(mergeValueIntoStruct(&target, "n", v.SerializeAsString()));
  pb::Struct s;
  ASSERT_TRUE(s.ParseFromString(target));
  EXPECT_EQ(s.fields().at("k").string_value(), "x");
  EXPECT_EQ(s.fields().at("n").number_value(), 2);
  EXPECT_FALSE(mergeValueIntoStruct(&target, "bad", "\xff\xff\xff"));
}

}  // namespace
}  // namespace corral::golang
