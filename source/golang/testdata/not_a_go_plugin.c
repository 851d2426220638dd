/* A shared library that loads fine but is not a Go plugin: it has none of the Go exports. */
int not_a_go_plugin(void) { return 42; }
