#ifndef SETU_CLIBYAML_SHIM_H
#define SETU_CLIBYAML_SHIM_H
#include <yaml.h>
#endif
