/* Mandelbrot tiles -- Spare Cycles bundled app (runtime: wasm).
 *
 * The same computation as workunits/mandelbrot/main.py, compiled to a freestanding
 * WebAssembly module with the JSON-in/JSON-out ABI of docs/wasm-abi.md:
 *
 *   memory                      exported linear memory
 *   alloc(len) -> ptr           room for the input (a bump allocator; 0 if out of memory)
 *   run(ptr, len) -> ptr        input JSON at ptr; returns a result record:
 *                               u32 status (0 ok, 1 error), u32 length, then that many
 *                               bytes of UTF-8: the output JSON, or an error message
 *
 * No libc, no imports. The worker instantiates a fresh instance per task, so the
 * allocator never frees.
 *
 * Bit-identical to the Python app: the same IEEE-754 double operations in the same
 * order (-ffp-contract=off, and wasm has no fused multiply-add), and decimal inputs
 * are converted exactly when they have at most 19 significant digits and a value
 * that Clinger's fast path covers (mantissa <= 2^53, |exponent| <= 22) -- which
 * includes every input inputs.py generates. Other numbers are converted to within
 * an ulp or so (documented in docs/wasm-abi.md).
 *
 * Rebuild: make -C workunits/mandelbrot-wasm   (clang --target=wasm32, see Makefile)
 */

typedef unsigned char u8;
typedef unsigned int u32;
typedef int i32;
typedef long long i64;
typedef unsigned long long u64;
typedef unsigned long usize;

#define EXPORT(name) __attribute__((export_name(name)))
#define PAGE 65536UL
#define MAX_TILE_PIXELS (256 * 256)
#define MAX_ITER_LIMIT 100000

/* clang may turn loops into calls to these even with -nostdlib. */
void *memset(void *dst, int value, usize n) {
    u8 *d = dst;
    while (n--) *d++ = (u8)value;
    return dst;
}

void *memcpy(void *dst, const void *src, usize n) {
    u8 *d = dst;
    const u8 *s = src;
    while (n--) *d++ = *s++;
    return dst;
}

/* ---- memory ------------------------------------------------------------------------- */

extern u8 __heap_base;
static usize heap_top;

EXPORT("alloc")
void *alloc(u32 len) {
    if (!heap_top) heap_top = (usize)&__heap_base;
    usize p = (heap_top + 7) & ~(usize)7;
    usize end = p + len;
    usize have = __builtin_wasm_memory_size(0) * PAGE;
    if (end > have) {
        usize pages = (end - have + PAGE - 1) / PAGE;
        if (__builtin_wasm_memory_grow(0, pages) == (usize)-1) return 0;
    }
    heap_top = end;
    return (void *)p;
}

/* ---- output buffer ------------------------------------------------------------------ */

typedef struct {
    u8 *base;   /* the record: status, length, bytes */
    u8 *p;
    u8 *end;
} Out;

static int out_open(Out *o, usize capacity) {
    o->base = alloc((u32)(capacity + 8));
    if (!o->base) return 0;
    o->p = o->base + 8;
    o->end = o->p + capacity;
    return 1;
}

static void put(Out *o, const char *s) {
    while (*s && o->p < o->end) *o->p++ = (u8)*s++;
}

static void put_n(Out *o, const u8 *s, usize n) {
    while (n-- && o->p < o->end) *o->p++ = *s++;
}

static void put_int(Out *o, i64 v) {
    char buf[24];
    int i = 0;
    u64 u = v < 0 ? (u64)(-(v + 1)) + 1 : (u64)v;
    do {
        buf[i++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0 && o->p < o->end) *o->p++ = '-';
    while (i-- && o->p < o->end) *o->p++ = (u8)buf[i];
}

static u8 *finish(Out *o, u32 status) {
    u32 len = (u32)(o->p - (o->base + 8));
    u32 *head = (u32 *)o->base;
    head[0] = status;
    head[1] = len;
    return o->base;
}

static u8 *fail(const char *message, const char *key) {
    Out o;
    if (!out_open(&o, 256)) return 0;
    if (key) {
        put(&o, key);
        put(&o, ": ");
    }
    put(&o, message);
    return finish(&o, 1);
}

/* ---- a small JSON reader -------------------------------------------------------------- */

typedef struct {
    const u8 *p;
    const u8 *end;
} Json;

enum { T_NONE, T_NUMBER, T_OTHER };

typedef struct {
    int type;        /* T_NONE (missing), T_NUMBER, T_OTHER */
    int is_int;      /* no fraction or exponent in the text */
    int int_ok;      /* the integer fits in 62 bits */
    i64 int_value;
    double value;
    const u8 *raw;   /* the value's JSON text, for echoing */
    usize raw_len;
} Value;

static const double POW10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                               1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                               1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static void ws(Json *j) {
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static int digit(Json *j) { return j->p < j->end && *j->p >= '0' && *j->p <= '9'; }

/* A JSON number into v; 0 if malformed. */
static int number(Json *j, Value *v) {
    int negative = 0;
    u64 mantissa = 0;
    int digits = 0, dropped = 0, exp10 = 0;
    v->is_int = 1;
    v->int_ok = 1;
    v->int_value = 0;
    if (j->p < j->end && *j->p == '-') {
        negative = 1;
        j->p++;
    }
    if (!digit(j)) return 0;
    if (*j->p == '0') {
        j->p++;
    } else {
        while (digit(j)) {
            int d = *j->p++ - '0';
            if (v->int_value > ((i64)1 << 61)) v->int_ok = 0;
            else v->int_value = v->int_value * 10 + d;
            if (digits < 19) {
                mantissa = mantissa * 10 + (u64)d;
                if (mantissa) digits++;
            } else {
                dropped |= d;
                exp10++;
            }
        }
    }
    if (j->p < j->end && *j->p == '.') {
        v->is_int = 0;
        j->p++;
        if (!digit(j)) return 0;
        while (digit(j)) {
            int d = *j->p++ - '0';
            if (digits < 19) {
                mantissa = mantissa * 10 + (u64)d;
                if (mantissa) digits++;
                exp10--;
            } else {
                dropped |= d;
            }
        }
    }
    if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
        int esign = 1, e = 0;
        v->is_int = 0;
        j->p++;
        if (j->p < j->end && (*j->p == '+' || *j->p == '-')) esign = *j->p++ == '-' ? -1 : 1;
        if (!digit(j)) return 0;
        while (digit(j)) {
            if (e < 100000) e = e * 10 + (*j->p - '0');
            j->p++;
        }
        exp10 += esign * e;
    }
    double value;
    if (!dropped && mantissa <= ((u64)1 << 53) && exp10 >= -22 && exp10 <= 22) {
        /* Clinger's fast path: both operands exact, one correctly rounded operation. */
        value = (double)mantissa;
        value = exp10 >= 0 ? value * POW10[exp10] : value / POW10[-exp10];
    } else {
        value = (double)mantissa;
        int e = exp10;
        while (e > 22 && value != 0 && value < 1e300) { value *= 1e22; e -= 22; }
        while (e < -22 && value != 0) { value /= 1e22; e += 22; }
        value = e >= 0 ? value * POW10[e > 22 ? 22 : e] : value / POW10[-e > 22 ? 22 : -e];
    }
    v->value = negative ? -value : value;
    if (negative) v->int_value = -v->int_value;
    return 1;
}

static int skip(Json *j, int depth);

static int string(Json *j) {
    if (j->p >= j->end || *j->p != '"') return 0;
    j->p++;
    while (j->p < j->end && *j->p != '"') {
        if (*j->p == '\\') j->p++;
        j->p++;
    }
    if (j->p >= j->end) return 0;
    j->p++;
    return 1;
}

static int literal(Json *j, const char *word) {
    while (*word) {
        if (j->p >= j->end || *j->p != (u8)*word) return 0;
        j->p++;
        word++;
    }
    return 1;
}

static int skip(Json *j, int depth) {
    if (depth > 64) return 0;
    ws(j);
    if (j->p >= j->end) return 0;
    u8 c = *j->p;
    if (c == '"') return string(j);
    if (c == 't') return literal(j, "true");
    if (c == 'f') return literal(j, "false");
    if (c == 'n') return literal(j, "null");
    if (c == '[' || c == '{') {
        u8 close = c == '[' ? ']' : '}';
        j->p++;
        ws(j);
        if (j->p < j->end && *j->p == close) {
            j->p++;
            return 1;
        }
        for (;;) {
            if (c == '{') {
                ws(j);
                if (!string(j)) return 0;
                ws(j);
                if (j->p >= j->end || *j->p != ':') return 0;
                j->p++;
            }
            if (!skip(j, depth + 1)) return 0;
            ws(j);
            if (j->p < j->end && *j->p == ',') {
                j->p++;
                continue;
            }
            if (j->p < j->end && *j->p == close) {
                j->p++;
                return 1;
            }
            return 0;
        }
    }
    Value ignored;
    return number(j, &ignored);
}

#define NKEYS 12
static const char *KEYS[NKEYS] = {"width",  "height", "size",   "x0",     "y0",   "max_iter",
                                  "re_min", "re_max", "im_min", "im_max", "tile", "level"};
enum { WIDTH, HEIGHT, SIZE, X0, Y0, MAX_ITER, RE_MIN, RE_MAX, IM_MIN, IM_MAX, TILE, LEVEL };

/* The key at j->p (a plain ASCII key without escapes), as an index into KEYS, or -1. */
static int key_index(const u8 *start, usize len) {
    for (int k = 0; k < NKEYS; k++) {
        const char *name = KEYS[k];
        usize n = 0;
        while (name[n]) n++;
        if (n != len) continue;
        usize i = 0;
        while (i < n && start[i] == (u8)name[i]) i++;
        if (i == n) return k;
    }
    return -1;
}

static int parse(Json *j, Value values[NKEYS]) {
    for (int k = 0; k < NKEYS; k++) values[k].type = T_NONE;
    ws(j);
    if (j->p >= j->end || *j->p != '{') return 0;
    j->p++;
    ws(j);
    if (j->p < j->end && *j->p == '}') return 1;
    for (;;) {
        ws(j);
        const u8 *key = j->p + 1;
        if (!string(j)) return 0;
        int k = key_index(key, (usize)(j->p - 1 - key));
        ws(j);
        if (j->p >= j->end || *j->p != ':') return 0;
        j->p++;
        ws(j);
        const u8 *raw = j->p;
        Value v;
        v.type = T_OTHER;
        if (j->p < j->end && (*j->p == '-' || (*j->p >= '0' && *j->p <= '9'))) {
            if (!number(j, &v)) return 0;
            v.type = T_NUMBER;
        } else if (!skip(j, 1)) {
            return 0;
        }
        v.raw = raw;
        v.raw_len = (usize)(j->p - raw);
        if (k >= 0) values[k] = v;
        ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (j->p < j->end && *j->p == '}') {
            j->p++;
            ws(j);
            return j->p == j->end;
        }
        return 0;
    }
}

/* ---- the app ------------------------------------------------------------------------- */

static const char *need_int(Value *v, i64 lo, i64 hi, i64 *out) {
    if (v->type == T_NONE) return "missing";
    if (v->type != T_NUMBER || !v->is_int || !v->int_ok) return "must be an int";
    if (v->int_value < lo || v->int_value > hi) return "out of range";
    *out = v->int_value;
    return 0;
}

static const char *need_num(Value *v, double *out) {
    if (v->type == T_NONE) return "missing";
    if (v->type != T_NUMBER) return "must be a number";
    double x = v->value;
    if (x != x || x > 1.7976931348623157e308 || x < -1.7976931348623157e308)
        return "must be finite";
    *out = x;
    return 0;
}

EXPORT("run")
u8 *run(const u8 *input, u32 len) {
    Value in[NKEYS];
    Json j = {input, input + len};
    if (!parse(&j, in)) return fail("the input is not a JSON object", 0);

    i64 width, height, size, x0, y0, max_iter;
    double re_min, re_max, im_min, im_max;
    const char *why;
    if ((why = need_int(&in[WIDTH], 1, (i64)1 << 30, &width))) return fail(why, "width");
    if ((why = need_int(&in[HEIGHT], 1, (i64)1 << 30, &height))) return fail(why, "height");
    if ((why = need_int(&in[SIZE], 1, 4096, &size))) return fail(why, "size");
    if ((why = need_int(&in[X0], 0, width - 1, &x0))) return fail(why, "x0");
    if ((why = need_int(&in[Y0], 0, height - 1, &y0))) return fail(why, "y0");
    if ((why = need_int(&in[MAX_ITER], 1, MAX_ITER_LIMIT, &max_iter))) return fail(why, "max_iter");
    if ((why = need_num(&in[RE_MIN], &re_min))) return fail(why, "re_min");
    if ((why = need_num(&in[RE_MAX], &re_max))) return fail(why, "re_max");
    if ((why = need_num(&in[IM_MIN], &im_min))) return fail(why, "im_min");
    if ((why = need_num(&in[IM_MAX], &im_max))) return fail(why, "im_max");

    i64 tw = size < width - x0 ? size : width - x0;
    i64 th = size < height - y0 ? size : height - y0;
    if (tw * th > MAX_TILE_PIXELS) return fail("tile too large", 0);

    double dre = (re_max - re_min) / (double)width;
    double dim = (im_max - im_min) / (double)height;

    Out o;
    /* 7 bytes per count at most ("100000,"), brackets per row, and the small fields. */
    if (!out_open(&o, (usize)(tw * th * 7 + th * 3 + 512 + in[TILE].raw_len * (in[TILE].type != T_NONE)
                              + in[LEVEL].raw_len * (in[LEVEL].type != T_NONE))))
        return fail("out of memory", 0);
    put(&o, "{\"tile\":");
    if (in[TILE].type == T_NONE) put(&o, "null");
    else put_n(&o, in[TILE].raw, in[TILE].raw_len);
    put(&o, ",\"level\":");
    if (in[LEVEL].type == T_NONE) put(&o, "0");
    else put_n(&o, in[LEVEL].raw, in[LEVEL].raw_len);
    put(&o, ",\"x0\":"); put_int(&o, x0);
    put(&o, ",\"y0\":"); put_int(&o, y0);
    put(&o, ",\"size\":"); put_int(&o, size);
    put(&o, ",\"width\":"); put_int(&o, width);
    put(&o, ",\"height\":"); put_int(&o, height);
    put(&o, ",\"max_iter\":"); put_int(&o, max_iter);
    put(&o, ",\"iterations\":[");

    for (i64 row = 0; row < th; row++) {
        double ci = im_max - ((double)(y0 + row) + 0.5) * dim;
        if (row) put(&o, ",");
        put(&o, "[");
        for (i64 col = 0; col < tw; col++) {
            double cr = re_min + ((double)(x0 + col) + 0.5) * dre;
            double zr = 0.0, zi = 0.0, zr2 = 0.0, zi2 = 0.0;
            i64 n = 0;
            while (n < max_iter && zr2 + zi2 <= 4.0) {
                zi = 2.0 * zr * zi + ci;
                zr = zr2 - zi2 + cr;
                zr2 = zr * zr;
                zi2 = zi * zi;
                n++;
            }
            if (col) put(&o, ",");
            put_int(&o, n);
        }
        put(&o, "]");
    }
    put(&o, "]}");
    return finish(&o, 0);
}
