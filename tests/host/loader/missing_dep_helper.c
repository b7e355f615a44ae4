/* The shared library missing_dep.so links against. It is built into
 * missing_dep_lib/, a folder that is never on the loader's search path, so
 * dlopen of missing_dep.so fails with "cannot open shared object file". */
int aurora_loader_gone_answer(void);

int aurora_loader_gone_answer(void) {
    return 42;
}
