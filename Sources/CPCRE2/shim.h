// PCRE2 is built for three code unit widths; the SecLang engine matches bytes, so it selects the
// 8-bit library before including the header (pcre2.h refuses to compile without a width).
#ifndef GATEHOUSE_CPCRE2_SHIM_H
#define GATEHOUSE_CPCRE2_SHIM_H
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#endif
