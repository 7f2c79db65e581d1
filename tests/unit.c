/*
 * unit.c - tests of lib/ functions that no program reaches alone.
 * Prints "ok - name" or "not ok - name" lines, counted by tests/run.sh.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kz.h"

static int failed;

static void
check(int cond, const char *name)
{
	printf("%s - %s\n", cond ? "ok" : "not ok", name);
	failed |= !cond;
}

static void
test_utf8(void)
{
	char b[8];

	/* Encodings from the Unicode tables, not from this code. */
	check(kz_utf8_encode(0x304A, b) == 3 &&
	    memcmp(b, "\xE3\x81\x8A", 4) == 0, "utf8: U+304A is E3 81 8A");
	check(kz_utf8_encode(0x20000, b) == 4 &&
	    memcmp(b, "\xF0\xA0\x80\x80", 5) == 0, "utf8: U+20000 is F0 A0 80 80");
	check(kz_utf8_encode(0xE9, b) == 2 && memcmp(b, "\xC3\xA9", 3) == 0,
	    "utf8: U+00E9 is C3 A9");
	check(kz_utf8_encode(0xD800, b) == 0, "utf8: surrogates refused");
	check(kz_utf8_encode(0x110000, b) == 0, "utf8: beyond U+10FFFF refused");
}

static void
test_codepoint(void)
{
	uint32_t cp = 0;

	check(kz_parse_codepoint("U+4E00", 6, &cp) == 0 && cp == 0x4E00,
	    "codepoint: U+4E00");
	check(kz_parse_codepoint("U+241C6", 7, &cp) == 0 && cp == 0x241C6,
	    "codepoint: U+241C6");
	check(kz_parse_codepoint("U+4E0", 5, &cp) != 0, "codepoint: 3 digits refused");
	check(kz_parse_codepoint("U+4G00", 6, &cp) != 0, "codepoint: non-hex refused");
	check(kz_parse_codepoint("X+4E00", 6, &cp) != 0, "codepoint: no U+ refused");
	check(kz_parse_codepoint("U+110000", 8, &cp) != 0, "codepoint: beyond Unicode refused");
}

static void
test_header(void)
{
	struct kz_header h = { 28, 28, KZ_PIXEL_U8, 3, 10 }, d;
	struct kz_err e;
	uint8_t b[KZ_HEADER_SIZE];

	kz_header_encode(&h, b);
	/* Bytes as kz.5 lays them out, written out by hand. */
	static const uint8_t want[KZ_HEADER_SIZE] = {
		0x8b, 'K', 'Z', 'S', 0x0d, 0x0a, 0x1a, 0x0a, 1, 0, 32, 0,
		1, 0, 3, 0, 28, 0, 0, 0, 28, 0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0
	};
	check(memcmp(b, want, sizeof(want)) == 0, "header: bytes as kz.5 says");
	check(kz_header_decode(b, &d, &e) == 0 && d.width == 28 &&
	    d.height == 28 && d.k == 3 && d.nclasses == 10 &&
	    d.pixel == KZ_PIXEL_U8, "header: round trip");
	check(kz_record_size(&h) == 12 + 3 * 8 + 784, "header: record size");
	h.pixel = KZ_PIXEL_F32;
	check(kz_record_size(&h) == 12 + 3 * 8 + 4 * 784,
	    "header: f32 record size");
	h.width = 5000;
	check(kz_header_check(&h, &e) != 0 && strstr(e.msg, "width 5000"),
	    "header: width beyond the bound named");
	/* The magic read as a record's u64 index is >= 2^56 > 2^48. */
	uint64_t as_index = 0;
	for (int i = 7; i >= 0; i--)
		as_index = as_index << 8 | (uint8_t)KZ_MAGIC[i];
	check(as_index >= KZ_MAX_INDEX, "header: magic can never be an index");
}

static void
test_classmap(void)
{
	struct kz_classmap m;
	struct kz_err e;
	const char *ok = "index,codepoint,char\r\n1,U+5B57,\"字\"\r\n0,U+4E00,一\r\n";

	check(kz_classmap_parse(ok, strlen(ok), "m", &m, &e) == 0 && m.n == 2 &&
	    m.codepoint[0] == 0x4E00 && strcmp(m.utf8[1], "字") == 0 &&
	    kz_classmap_find(&m, 0x5B57) == 1 && kz_classmap_find(&m, 1) == -1,
	    "classmap: CRLF, quotes, rows out of order");
	kz_classmap_free(&m);
	const char *empty = "index,codepoint,char\n";
	check(kz_classmap_parse(empty, strlen(empty), "m", &m, &e) != 0 &&
	    strstr(e.msg, "no classes"), "classmap: no rows refused");
}

static void
test_detect(void)
{
	uint8_t tar[512] = { 0 };

	memcpy(tar + 257, "ustar", 5);
	check(kz_detect((const uint8_t *)"PK\3\4", 4) == KZ_FMT_NPZ, "detect: zip");
	check(kz_detect((const uint8_t *)"\0\0\x08\x03", 4) == KZ_FMT_IDX, "detect: idx3");
	check(kz_detect((const uint8_t *)"P5\n", 3) == KZ_FMT_PNM, "detect: PGM");
	check(kz_detect(tar, sizeof(tar)) == KZ_FMT_TAR, "detect: tar");
	check(kz_detect((const uint8_t *)KZ_MAGIC, 8) == KZ_FMT_STREAM, "detect: stream");
	check(kz_detect((const uint8_t *)"hello", 5) == KZ_FMT_UNKNOWN, "detect: text");
}

int
main(void)
{
	test_utf8();
	test_codepoint();
	test_header();
	test_classmap();
	test_detect();
	return failed;
}
