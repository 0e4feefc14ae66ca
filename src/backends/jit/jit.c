/* jit.c - jit_compile(): Model -> LLVM module -> optimised native code (ORC LLJIT).
 *
 * The flat list of steps: the kernels are emitted as two modules (jit_kernels.c,
 * JitPart), the hot half (the fused Euler loop and the rhs kernel) and the
 * cold half (setup, initial state, energy, activations, outputs), each in its
 * own context with its own TargetMachine for the host CPU (its features, so
 * the vectoriser sees what -march=native would give); each is verified, run
 * through the new pass manager's default<On> pipeline (LLVMRunPasses) and
 * turned into object code, the two halves on two threads at once; then one
 * LLJIT links both objects, resolves C library symbols (exp, log1p, tanh,
 * ...) in the process through a DynamicLibrarySearchGenerator and hands back
 * the entry points.  (Compiling the halves in parallel took parity_et from
 * 53 to 37 ms; see bench/README.md.)  Ownership transfers are commented where
 * they happen; every LLVMErrorRef is checked, its message copied into err and
 * disposed.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Support.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "jit_internal.h"

struct Jit {
	JitKernels k;
	LLVMOrcLLJITRef lljit;
	size_t *input_off, *output_off;
	int64_t *tensor_ws_off;
	uint8_t *tensor_by_ref;        /* 1: ws[tensor_ws_off] points at the values */
	double *zeros;                 /* what a by-reference tensor without data points at */
	int64_t sb_size, sb_slot;      /* the static block (jit_static_size) and its slot in ws */
	double *shared_static;         /* the static block of the model's own weights */
	uint32_t ntensors;
};

static pthread_once_t jit_llvm_once = PTHREAD_ONCE_INIT;
static int jit_llvm_ok;

static void jit_init_llvm(void)
{
	/* loop-unroll-and-jam acts only where allowed; the loops it may jam are
	 * chosen by their metadata (jit_emit.c, JIT_JAM_*). */
	const char *argv[] = {"damc", "-allow-unroll-and-jam"};
	LLVMParseCommandLineOptions(2, argv, NULL);
	jit_llvm_ok = !LLVMInitializeNativeTarget() && !LLVMInitializeNativeAsmPrinter();
}

int jit_llvm_init(char *err, size_t errlen)
{
	pthread_once(&jit_llvm_once, jit_init_llvm);
	if (jit_llvm_ok)
		return 0;
	jit_errf(err, errlen, "jit: LLVM has no native target");
	return -1;
}

void jit_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	if (!err || !errlen)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Copies the message of e (if any) into err and disposes e; returns -1 on
 * error, 0 when e is NULL (success). */
int jit_check(LLVMErrorRef e, const char *what, char *err, size_t errlen)
{
	if (!e)
		return 0;
	char *msg = LLVMGetErrorMessage(e);   /* consumes e */
	jit_errf(err, errlen, "%s: %s", what, msg);
	LLVMDisposeErrorMessage(msg);
	return -1;
}

static void jit_dump(LLVMModuleRef mod, FILE *out)
{
	char *s = LLVMPrintModuleToString(mod);
	fputs(s, out);
	LLVMDisposeMessage(s);
}

static LLVMCodeGenOptLevel jit_cg_level(int opt)
{
	switch (opt) {
	case 0: return LLVMCodeGenLevelNone;
	case 1: return LLVMCodeGenLevelLess;
	case 2: return LLVMCodeGenLevelDefault;
	default: return LLVMCodeGenLevelAggressive;
	}
}

/* LLVM's remarks and warnings about the optimisation (say "loop not
 * unroll-and-jammed" where the JIT_JAM_* metadata asks for a transformation
 * the pass finds unsafe: the loop then stays as it was, which is correct)
 * are for compiler developers, not for a user of damc: dropped.  An error
 * is printed. */
static void jit_diagnostic(LLVMDiagnosticInfoRef d, void *user)
{
	(void)user;
	if (LLVMGetDiagInfoSeverity(d) != LLVMDSError)
		return;
	char *msg = LLVMGetDiagInfoDescription(d);
	fprintf(stderr, "damc: LLVM: %s\n", msg);
	LLVMDisposeMessage(msg);
}

LLVMContextRef jit_context_new(void)
{
	LLVMContextRef ctx = LLVMContextCreate();
	LLVMContextSetDiagnosticHandler(ctx, jit_diagnostic, NULL);
	return ctx;
}

/* A TargetMachine for the host CPU and its features. */
LLVMTargetMachineRef jit_host_tm(int opt, char *err, size_t errlen)
{
	char *triple = LLVMGetDefaultTargetTriple();
	char *cpu = LLVMGetHostCPUName();
	char *features = LLVMGetHostCPUFeatures();
	char *msg = NULL;
	LLVMTargetRef target;
	LLVMTargetMachineRef tm = NULL;
	if (LLVMGetTargetFromTriple(triple, &target, &msg)) {
		jit_errf(err, errlen, "no LLVM target for %s: %s", triple, msg ? msg : "?");
		LLVMDisposeMessage(msg);
	} else {
		tm = LLVMCreateTargetMachine(target, triple, cpu, features, jit_cg_level(opt),
		                             LLVMRelocDefault, LLVMCodeModelJITDefault);
		if (!tm)
			jit_errf(err, errlen, "cannot create a target machine for %s", triple);
	}
	LLVMDisposeMessage(triple);
	LLVMDisposeMessage(cpu);
	LLVMDisposeMessage(features);
	return tm;
}

/* Is +name in LLVM's comma-separated feature list f? */
static bool jit_has_feature(const char *f, const char *name)
{
	size_t n = strlen(name);
	for (const char *p = f; p && *p;) {
		const char *c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);
		if (len == n + 1 && p[0] == '+' && memcmp(p + 1, name, n) == 0)
			return true;
		p = c ? c + 1 : NULL;
	}
	return false;
}

/* Doubles per vector register of the host: 8 with AVX-512, 4 with AVX, else 2. */
int jit_host_vlen(void)
{
	char *f = LLVMGetHostCPUFeatures();
	int v = jit_has_feature(f, "avx512f") ? 8 : jit_has_feature(f, "avx") ? 4 : 2;
	LLVMDisposeMessage(f);
	return v;
}

/* Private (module-local) names get a "hot." prefix. */
static void jit_rename_private(LLVMValueRef v)
{
	if (LLVMGetLinkage(v) != LLVMPrivateLinkage && LLVMGetLinkage(v) != LLVMInternalLinkage)
		return;
	size_t len;
	const char *name = LLVMGetValueName2(v, &len);
	char buf[256];
	int n = snprintf(buf, sizeof buf, "hot.%.*s", (int)(len < 200 ? len : 200), name);
	LLVMSetValueName2(v, buf, (size_t)n);
}

/* Emits the kernels into mod, dumps it when asked (before verifying, so a
 * broken module can be read) and verifies it. */
static int jit_build_module(LLVMModuleRef mod, const Model *m, JitLayout *lay, JitPart part, const JitOptions *opt,
                            unsigned flags, FILE *dump, char *err, size_t errlen)
{
	JitEmit E;
	jit_emit_init(&E, mod, m);
	E.bake = opt->bake_weights != 0;
	E.by_ref_ok = !E.bake;
	E.fast_exp = opt->fast_exp != 0;
	E.want_batch = (flags & JIT_BATCH) != 0;
	E.want_split = (flags & JIT_SPLIT) != 0;
	int rc = jit_build_kernels(&E, lay, part);
	if (rc)
		jit_errf(err, errlen, "jit: %s", E.err);
	jit_emit_fini(&E);
	if (rc)
		return -1;
	if (dump)
		jit_dump(mod, dump);
	char *msg = NULL;
	if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) {
		jit_errf(err, errlen, "jit: invalid LLVM IR: %s", msg ? msg : "?");
		LLVMDisposeMessage(msg);
		return -1;
	}
	LLVMDisposeMessage(msg);
	return 0;
}

/* The pass pipeline at level opt >= 1: default<On>, then unroll and jam the
 * loops whose metadata asks for it (jit_emit.c, JIT_JAM_*). */
static void jit_pipeline(int opt, char *buf, size_t n)
{
	snprintf(buf, n, "default<O%d>%s", opt > 3 ? 3 : opt, opt >= 2 ? ",function(loop(loop-unroll-and-jam))" : "");
}

int jit_optimise(LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt, char *err, size_t errlen)
{
	char pipeline[96];
	if (opt <= 0)
		return 0;
	jit_pipeline(opt, pipeline, sizeof pipeline);
	LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
	LLVMPassBuilderOptionsSetLoopVectorization(po, 1);
	LLVMPassBuilderOptionsSetSLPVectorization(po, 1);
	LLVMPassBuilderOptionsSetLoopUnrolling(po, 1);
	LLVMErrorRef e = LLVMRunPasses(mod, pipeline, tm, po);
	LLVMDisposePassBuilderOptions(po);
	return jit_check(e, "jit: optimisation", err, errlen);
}

/* Creates the LLJIT; consumes tm (the JIT's target machine builder takes it). */
LLVMOrcLLJITRef jit_create_lljit(LLVMTargetMachineRef tm, char *err, size_t errlen)
{
	LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
	/* The JTMB takes ownership of tm; the builder takes the JTMB. */
	LLVMOrcJITTargetMachineBuilderRef jtmb = LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm);
	LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, jtmb);
	LLVMOrcLLJITRef lljit = NULL;
	/* LLVMOrcCreateLLJIT consumes the builder, even on error. */
	if (jit_check(LLVMOrcCreateLLJIT(&lljit, builder), "jit: creating LLJIT", err, errlen))
		return NULL;
	LLVMOrcDefinitionGeneratorRef gen = NULL;
	LLVMErrorRef e = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(
		&gen, LLVMOrcLLJITGetGlobalPrefix(lljit), NULL, NULL);
	if (jit_check(e, "jit: process symbol generator", err, errlen)) {
		LLVMOrcDisposeLLJIT(lljit);
		return NULL;
	}
	/* The main JITDylib takes ownership of the generator. */
	LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(lljit), gen);
	return lljit;
}

static int jit_lookup(Jit *j, const char *name, void *fnptr_out, char *err, size_t errlen)
{
	LLVMOrcExecutorAddress addr = 0;
	char what[96];
	snprintf(what, sizeof what, "jit: looking up %s", name);
	if (jit_check(LLVMOrcLLJITLookup(j->lljit, &addr, name), what, err, errlen))
		return -1;
	/* The field is a function pointer: store the address through memcpy. */
	void *p = (void *)(uintptr_t)addr;
	memcpy(fnptr_out, &p, sizeof p);
	return 0;
}

static int jit_lookup_all(Jit *j, char *err, size_t errlen)
{
	JitKernels *k = &j->k;
	if (jit_lookup(j, JIT_FN_SETUP, &k->setup, err, errlen) ||
	    jit_lookup(j, JIT_FN_SETUP_RUN, &k->setup_run, err, errlen) ||
	    jit_lookup(j, JIT_FN_SETUP_STATIC, &k->setup_static, err, errlen) ||
	    jit_lookup(j, JIT_FN_INIT, &k->init_state, err, errlen) ||
	    jit_lookup(j, JIT_FN_RHS, &k->rhs, err, errlen) ||
	    jit_lookup(j, JIT_FN_ENERGY, &k->energy, err, errlen) ||
	    jit_lookup(j, JIT_FN_ACTS, &k->acts, err, errlen) ||
	    jit_lookup(j, JIT_FN_OUTPUTS, &k->outputs, err, errlen) ||
	    jit_lookup(j, JIT_FN_EULER, &k->euler, err, errlen) ||
	    jit_lookup(j, JIT_FN_RELAYOUT, &k->relayout, err, errlen))
		return -1;
	return 0;
}

/* Workspaces (doubles) up to which the cold half (setup, energy, outputs:
 * code that runs once per run or once per check interval) gets the fast
 * code generator (LLVM's level None: fast instruction selection and register
 * allocation, after the same optimised IR).  For such small models that
 * code's time is a small part of a run's and code generation a large part
 * of the compile: parity_et (about 9000 doubles) 247M -> 156M instructions in the
 * cold half's compile (callgrind), the half that was the longer one; the
 * same results bit for bit (no level contracts a multiply and an add).
 * Larger models keep the full code generator: their setup and energies
 * sum over large weight matrices. */
#define JIT_COLD_FAST_WS ((size_t)1 << 16)

/* One half of the kernels (JitPart) with its own context, module and target
 * machine: the halves are optimised and turned into object code on two
 * threads at once (LLVM contexts and target machines are not shared), then
 * both objects are linked by one LLJIT. */
typedef struct JitUnit {
	JitPart part;
	int opt;
	int cg;                    /* code generation level (jit_cg_level) */
	LLVMContextRef ctx;
	LLVMModuleRef mod;
	LLVMTargetMachineRef tm;
	JitLayout lay;
	LLVMMemoryBufferRef obj;   /* the object code, until the LLJIT takes it */
	char *key;                 /* object cache: what the code depends on (NULL: no cache) */
	size_t keylen;
	bool cached;               /* obj came from the cache */
	int rc;
	char err[512];
} JitUnit;

static int jit_unit_build(JitUnit *u, const Model *m, JitPart part, const JitOptions *opt, unsigned flags,
                          FILE *dump, char *err, size_t errlen)
{
	u->part = part;
	u->opt = opt->opt_level;
	if (!(u->tm = jit_host_tm(u->opt, err, errlen)))
		return -1;
	u->ctx = jit_context_new();
	u->mod = LLVMModuleCreateWithNameInContext(part == JIT_PART_HOT ? "dam.hot" : "dam", u->ctx);
	char *triple = LLVMGetTargetMachineTriple(u->tm);
	LLVMSetTarget(u->mod, triple);
	LLVMDisposeMessage(triple);
	LLVMTargetDataRef td = LLVMCreateTargetDataLayout(u->tm);
	LLVMSetModuleDataLayout(u->mod, td);
	LLVMDisposeTargetData(td);
	if (jit_build_module(u->mod, m, &u->lay, part, opt, flags, dump, err, errlen))
		return -1;
	u->cg = u->opt;
	if (part == JIT_PART_COLD && u->lay.ws_size <= JIT_COLD_FAST_WS && u->opt > 0) {
		LLVMDisposeTargetMachine(u->tm);
		u->cg = 0;
		if (!(u->tm = jit_host_tm(u->cg, err, errlen)))
			return -1;
	}
	/* Both halves define private constants and helpers of the same names:
	 * give the hot half's their own. */
	if (part == JIT_PART_HOT) {
		for (LLVMValueRef g = LLVMGetFirstGlobal(u->mod); g; g = LLVMGetNextGlobal(g))
			jit_rename_private(g);
		for (LLVMValueRef f = LLVMGetFirstFunction(u->mod); f; f = LLVMGetNextFunction(f))
			jit_rename_private(f);
	}
	return 0;
}

static void jit_unit_free(JitUnit *u)
{
	if (u->obj)
		LLVMDisposeMemoryBuffer(u->obj);
	if (u->mod)
		LLVMDisposeModule(u->mod);
	if (u->ctx)
		LLVMContextDispose(u->ctx);
	if (u->tm)
		LLVMDisposeTargetMachine(u->tm);
	dam_free(u->key);
	dam_free(u->lay.input_off);
	dam_free(u->lay.output_off);
	dam_free(u->lay.tensor_ws_off);
	dam_free(u->lay.tensor_by_ref);
	memset(u, 0, sizeof *u);
}

static void *jit_unit_optimise(void *p)
{
	JitUnit *u = p;
	if (u->cached) {
		u->rc = 0;
		return NULL;
	}
	u->rc = jit_optimise(u->mod, u->tm, u->opt, u->err, sizeof u->err);
	return NULL;
}

static void *jit_unit_emit(void *p)
{
	JitUnit *u = p;
	char *msg = NULL;
	u->rc = 0;
	if (u->cached)
		return NULL;
	if (LLVMTargetMachineEmitToMemoryBuffer(u->tm, u->mod, LLVMObjectFile, &msg, &u->obj)) {
		jit_errf(u->err, sizeof u->err, "jit: code generation: %s", msg ? msg : "?");
		u->rc = -1;
	}
	LLVMDisposeMessage(msg);
	return NULL;
}

/* Both steps, so that neither thread waits for the other in between (the
 * cold half's code generation overlaps the hot half's optimisation). */
static void *jit_unit_compile(void *p)
{
	JitUnit *u = p;
	jit_unit_optimise(u);
	return u->rc ? NULL : jit_unit_emit(u);
}

/* ---- the object cache -------------------------------------------------------
 *
 * Optimisation and code generation are nearly all of a compile (parity_et:
 * about 160 ms on a 2 GHz Xeon, the IR takes under 1 ms to build), and a user
 * compiles the same model again and again.  So each unit's object code is
 * kept in a file named by the CRC-32 and length of its key: the cache
 * format's version, the LLVM version, the target triple, host CPU and
 * features, the optimisation level and pass pipeline, and the unoptimised IR
 * in full.  An entry is used only if its stored key equals ours byte for
 * byte (a name collision is a miss, never wrong code) and its object's
 * CRC-32 is right; the object is the one LLVM would emit again (code
 * generation is deterministic), so a hit gives the same results bit for bit.
 * Entries are written to a temp file and renamed, so concurrent compiles of
 * the same model are safe; any failure to read or write the cache is silent
 * and falls back to compiling.  Nothing is ever evicted (docs/cli.md: remove
 * the directory). */

#define JIT_CACHE_MAGIC "damc jit object cache 3\n"

/* The cache directory: $DAMC_CACHE_DIR, else $XDG_CACHE_HOME/damc, else
 * $HOME/.cache/damc; none if DAMC_CACHE=0 or no such variable is set. */
static bool jit_cache_dir(char *buf, size_t n)
{
	const char *off = getenv("DAMC_CACHE"), *d = getenv("DAMC_CACHE_DIR");
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	int w;
	if (off && strcmp(off, "0") == 0)
		return false;
	if (d && *d)
		w = snprintf(buf, n, "%s", d);
	else if (xdg && *xdg)
		w = snprintf(buf, n, "%s/damc", xdg);
	else if (home && *home)
		w = snprintf(buf, n, "%s/.cache/damc", home);
	else
		return false;
	return w > 0 && (size_t)w < n;
}

/* mkdir -p: every missing directory of path. */
static bool jit_mkdirs(char *path)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		int rc = mkdir(path, 0755);
		*p = '/';
		if (rc && errno != EEXIST)
			return false;
	}
	return mkdir(path, 0755) == 0 || errno == EEXIST;
}

/* zlib's CRC-32 of n bytes, in pieces that fit its uInt. */
static uint32_t jit_crc(const void *p, size_t n)
{
	uLong c = crc32(0L, Z_NULL, 0);
	for (const Bytef *b = p; n;) {
		uInt k = n > (1u << 30) ? (1u << 30) : (uInt)n;
		c = crc32(c, b, k);
		b += k;
		n -= k;
	}
	return (uint32_t)c;
}

/* The unit's key, from its module before optimisation. */
static void jit_unit_key(JitUnit *u)
{
	unsigned maj, min, pat;
	LLVMGetVersion(&maj, &min, &pat);
	char *ir = LLVMPrintModuleToString(u->mod);
	char *triple = LLVMGetTargetMachineTriple(u->tm), *cpu = LLVMGetHostCPUName();
	char *feat = LLVMGetHostCPUFeatures();
	char pipeline[96] = "none";
	if (u->opt > 0)
		jit_pipeline(u->opt, pipeline, sizeof pipeline);
	const char *fmt = JIT_CACHE_MAGIC "llvm %u.%u.%u\ntriple %s\ncpu %s\nfeatures %s\nopt %d\npasses %s\ncodegen %d\n\n%s";
	int n = snprintf(NULL, 0, fmt, maj, min, pat, triple, cpu, feat, u->opt, pipeline, u->cg, ir);
	if (n > 0) {
		u->key = dam_xrealloc(NULL, (size_t)n + 1);
		snprintf(u->key, (size_t)n + 1, fmt, maj, min, pat, triple, cpu, feat, u->opt, pipeline, u->cg, ir);
		u->keylen = (size_t)n;
	}
	LLVMDisposeMessage(ir);
	LLVMDisposeMessage(triple);
	LLVMDisposeMessage(cpu);
	LLVMDisposeMessage(feat);
}

/* The entry's file in the cache directory dir. */
static bool jit_cache_path(const JitUnit *u, const char *dir, char *buf, size_t n)
{
	int w = snprintf(buf, n, "%s/%08x-%zx.o", dir, (unsigned)jit_crc(u->key, u->keylen), u->keylen);
	return w > 0 && (size_t)w < n;
}

/* An entry: JIT_CACHE_MAGIC, the key's size, the object's size and the
 * object's CRC-32 (8 bytes each, this host's byte order), the key, the
 * object.  An object whose CRC does not match is a miss. */
static void jit_cache_load(JitUnit *u)
{
	char path[4200], dir[4096];
	if (!u->key || !jit_cache_dir(dir, sizeof dir) || !jit_cache_path(u, dir, path, sizeof path))
		return;
	FILE *f = fopen(path, "rb");
	if (!f)
		return;
	uint64_t len[3];
	char *buf = NULL;
	size_t ml = strlen(JIT_CACHE_MAGIC);
	char magic[64];
	if (fread(magic, 1, ml, f) == ml && memcmp(magic, JIT_CACHE_MAGIC, ml) == 0 &&
	    fread(len, sizeof len[0], 3, f) == 3 && len[0] == u->keylen && len[1] > 0 && len[1] < ((uint64_t)1 << 31)) {
		buf = dam_xrealloc(NULL, (size_t)(len[0] + len[1]));
		if (fread(buf, 1, (size_t)(len[0] + len[1]), f) == len[0] + len[1] &&
		    memcmp(buf, u->key, u->keylen) == 0 && jit_crc(buf + len[0], (size_t)len[1]) == len[2]) {
			u->obj = LLVMCreateMemoryBufferWithMemoryRangeCopy(buf + len[0], (size_t)len[1], "damc-cache");
			u->cached = u->obj != NULL;
		}
	}
	dam_free(buf);
	fclose(f);
}

static void jit_cache_store(const JitUnit *u)
{
	char path[4200], tmp[4300], dir[4096];
	if (!u->key || u->cached || !u->obj || !jit_cache_dir(dir, sizeof dir) || !jit_mkdirs(dir) ||
	    !jit_cache_path(u, dir, path, sizeof path))
		return;
	snprintf(tmp, sizeof tmp, "%s.%ld.%p.tmp", path, (long)getpid(), (const void *)u);
	FILE *f = fopen(tmp, "wb");
	if (!f)
		return;
	uint64_t len[3] = {u->keylen, LLVMGetBufferSize(u->obj),
	                   jit_crc(LLVMGetBufferStart(u->obj), LLVMGetBufferSize(u->obj))};
	bool ok = fwrite(JIT_CACHE_MAGIC, 1, strlen(JIT_CACHE_MAGIC), f) == strlen(JIT_CACHE_MAGIC) &&
	          fwrite(len, sizeof len[0], 3, f) == 3 && fwrite(u->key, 1, u->keylen, f) == u->keylen &&
	          fwrite(LLVMGetBufferStart(u->obj), 1, (size_t)len[1], f) == len[1];
	ok = fclose(f) == 0 && ok;
	if (!ok || rename(tmp, path) != 0)
		remove(tmp);
}

/* fn on both units at once: the hot one on a new thread (or here, after the
 * cold one, if no thread can be made). */
static int jit_both(JitUnit *cold, JitUnit *hot, void *(*fn)(void *), char *err, size_t errlen)
{
	pthread_t t;
	bool threaded = pthread_create(&t, NULL, fn, hot) == 0;
	fn(cold);
	if (threaded)
		pthread_join(t, NULL);
	else
		fn(hot);
	if (cold->rc || hot->rc) {
		jit_errf(err, errlen, "%s", cold->rc ? cold->err : hot->err);
		return -1;
	}
	return 0;
}

/* The LLJIT takes the unit's object code. */
static int jit_unit_add(JitUnit *u, LLVMOrcLLJITRef lljit, char *err, size_t errlen)
{
	LLVMMemoryBufferRef obj = u->obj;
	u->obj = NULL;   /* consumed by LLVMOrcLLJITAddObjectFile, even on error */
	return jit_check(LLVMOrcLLJITAddObjectFile(lljit, LLVMOrcLLJITGetMainJITDylib(lljit), obj),
	                 "jit: adding object code", err, errlen);
}

Jit *jit_compile(const Model *m, const JitOptions *opt, char *err, size_t errlen)
{
	return jit_compile_flags(m, opt, 0, err, errlen);
}

Jit *jit_compile_flags(const Model *m, const JitOptions *opt, unsigned flags, char *err, size_t errlen)
{
	JitOptions defaults = {.opt_level = 3};
	JitUnit cold = {0}, hot = {0};
	Jit *j = NULL;

	if (!opt)
		opt = &defaults;
	pthread_once(&jit_llvm_once, jit_init_llvm);
	if (!jit_llvm_ok) {
		jit_errf(err, errlen, "jit: LLVM has no native target");
		return NULL;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (jit_unit_build(&cold, m, JIT_PART_COLD, opt, flags, opt->dump_ir_unopt, err, errlen) ||
	    jit_unit_build(&hot, m, JIT_PART_HOT, opt, flags, opt->dump_ir_unopt, err, errlen))
		goto fail;
	if (opt->cache && !opt->dump_ir) {   /* printing the optimised IR needs the optimiser */
		JitUnit *us[2] = {&cold, &hot};
		for (int i = 0; i < 2; i++) {
			jit_unit_key(us[i]);
			jit_cache_load(us[i]);
		}
	}
	if (opt->dump_ir) {   /* the optimised IR of both halves, in order, before their code */
		if (jit_both(&cold, &hot, jit_unit_optimise, err, errlen))
			goto fail;
		jit_dump(cold.mod, opt->dump_ir);
		jit_dump(hot.mod, opt->dump_ir);
		if (jit_both(&cold, &hot, jit_unit_emit, err, errlen))
			goto fail;
	} else if (jit_both(&cold, &hot, jit_unit_compile, err, errlen)) {
		goto fail;
	}
	jit_cache_store(&cold);
	jit_cache_store(&hot);

	j = dam_xrealloc(NULL, sizeof *j);
	memset(j, 0, sizeof *j);
	LLVMTargetMachineRef tm = jit_host_tm(opt->opt_level, err, errlen);
	if (!tm)
		goto fail;
	j->lljit = jit_create_lljit(tm, err, errlen);   /* consumes tm */
	if (!j->lljit || jit_unit_add(&cold, j->lljit, err, errlen) || jit_unit_add(&hot, j->lljit, err, errlen) ||
	    jit_lookup_all(j, err, errlen) ||
	    ((flags & JIT_BATCH) && (jit_lookup(j, JIT_FN_EULER_BATCH, &j->k.euler_batch, err, errlen) ||
	                              jit_lookup(j, JIT_FN_RHS_BATCH, &j->k.rhs_batch, err, errlen) ||
	                              jit_lookup(j, JIT_FN_ENERGY_BATCH, &j->k.energy_batch, err, errlen))))
		goto fail;
	for (int h = 0; h < 2 && (flags & JIT_SPLIT); h++) {
		char name[32];
		snprintf(name, sizeof name, "%s%d", JIT_FN_RHS_HALF, h);
		if (jit_lookup(j, name, &j->k.rhs_half[h], err, errlen))
			goto fail;
		snprintf(name, sizeof name, "%s%d", JIT_FN_UPDATE_HALF, h);
		if (jit_lookup(j, name, &j->k.update_half[h], err, errlen))
			goto fail;
	}

	clock_gettime(CLOCK_MONOTONIC, &t1);
	j->k.codegen_ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) * 1e-6;

	/* The layout is the same in both halves: keep the cold one's. */
	JitLayout *lay = &cold.lay;
	j->tensor_ws_off = lay->tensor_ws_off;
	j->tensor_by_ref = lay->tensor_by_ref;
	j->ntensors = lay->ntensors;
	j->sb_size = lay->sb_size;
	j->sb_slot = lay->sb_slot;
	j->input_off = lay->input_off;
	j->output_off = lay->output_off;
	j->k.input_off = lay->input_off;
	j->k.output_off = lay->output_off;
	j->k.ws_size = lay->ws_size;
	j->k.nstate = lay->nstate;
	j->k.noutput = lay->noutput;
	j->k.nact = lay->nact;
	j->k.tau_off = (size_t)lay->tau_off;
	j->k.batch_scratch = (size_t)lay->batch_scratch;
	j->k.dx_off = (size_t)lay->dx_off;
	j->k.batch_pack = (size_t)lay->batch_pack;
	j->k.keyed_off = lay->keyed_off;
	lay->tensor_ws_off = NULL;   /* owned by j now */
	lay->tensor_by_ref = NULL;
	size_t zmax = 0;             /* by-reference tensors without values read zeros */
	for (TensorId t = 1; t < m->ntensors && t < j->ntensors; t++)
		if (j->tensor_by_ref[t] && !m->tensors[t].data && (size_t)sym_tensor_size(m->sym, t) > zmax)
			zmax = (size_t)sym_tensor_size(m->sym, t);
	if (zmax) {
		j->zeros = dam_xrealloc(NULL, zmax * sizeof *j->zeros);
		memset(j->zeros, 0, zmax * sizeof *j->zeros);
	}
	if (j->sb_size > 0) {        /* the static block of the model's weights, once */
		j->shared_static = dam_xrealloc(NULL, (size_t)j->sb_size * sizeof *j->shared_static);
		memset(j->shared_static, 0, (size_t)j->sb_size * sizeof *j->shared_static);
		double *ws = dam_xrealloc(NULL, j->k.ws_size * sizeof *ws);
		memset(ws, 0, j->k.ws_size * sizeof *ws);
		jit_ws_init(j, m, ws);
		j->k.setup_static(ws);
		dam_free(ws);
	}
	lay->input_off = NULL;
	lay->output_off = NULL;
	jit_unit_free(&cold);
	jit_unit_free(&hot);
	return j;

fail:
	if (j) {
		if (j->lljit)
			jit_check(LLVMOrcDisposeLLJIT(j->lljit), "jit: disposing", NULL, 0);
		dam_free(j);
	}
	jit_unit_free(&cold);
	jit_unit_free(&hot);
	return NULL;
}

const JitKernels *jit_kernels(const Jit *j)
{
	return j ? &j->k : NULL;
}

void jit_free(Jit *j)
{
	if (!j)
		return;
	if (j->lljit) {
		LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->lljit);
		if (e) {
			char *msg = LLVMGetErrorMessage(e);
			fprintf(stderr, "jit: disposing LLJIT: %s\n", msg);
			LLVMDisposeErrorMessage(msg);
		}
	}
	dam_free(j->input_off);
	dam_free(j->output_off);
	dam_free(j->tensor_ws_off);
	dam_free(j->tensor_by_ref);
	dam_free(j->zeros);
	dam_free(j->shared_static);
	dam_free(j);
}

void jit_ws_init(const Jit *j, const Model *m, double *ws)
{
	size_t i = 0;
	for (int l = 0; l < m->nlayers; l++)
		for (int64_t n = 0; n < m->layers[l].n && i < j->k.nstate; n++)
			ws[j->k.tau_off + i++] = m->layers[l].tau;
	for (TensorId t = 1; t < m->ntensors && t < j->ntensors; t++) {
		const MTensor *mt = &m->tensors[t];
		int64_t off = j->tensor_ws_off[t];
		if ((mt->kind != MT_CONST && mt->kind != MT_LEARN) || off < 0)
			continue;
		if (j->tensor_by_ref[t])
			jit_ws_point(j, ws, t, mt->data ? mt->data : j->zeros);   /* shared, not copied */
		else if (mt->data)
			memcpy(ws + off, mt->data, (size_t)sym_tensor_size(m->sym, t) * sizeof *ws);
	}
	jit_ws_point_static(j, ws, j->shared_static);   /* computed once (jit_compile_flags) */
	if (j->k.keyed_off >= 0)
		ws[j->k.keyed_off] = 1.0;
}

size_t jit_static_size(const Jit *j)
{
	return j && j->sb_size > 0 ? (size_t)j->sb_size : 0;
}

void jit_ws_point_static(const Jit *j, double *ws, double *block)
{
	if (j && j->sb_size > 0)
		memcpy(ws + j->sb_slot, &block, sizeof block);
}

bool jit_ws_by_ref(const Jit *j, TensorId t)
{
	return j && t > 0 && t < j->ntensors && j->tensor_by_ref[t];
}

void jit_ws_point(const Jit *j, double *ws, TensorId t, const double *v)
{
	if (jit_ws_by_ref(j, t))
		memcpy(ws + j->tensor_ws_off[t], &v, sizeof v);
}

double *jit_ws_values(const Jit *j, double *ws, TensorId t)
{
	int64_t off = jit_ws_offset(j, t);
	if (off < 0)
		return NULL;
	if (!j->tensor_by_ref[t])
		return ws + off;
	double *v;
	memcpy(&v, ws + off, sizeof v);
	return v;
}

int64_t jit_ws_offset(const Jit *j, TensorId t)
{
	if (!j || t == 0 || t >= j->ntensors)
		return -1;
	return j->tensor_ws_off[t];
}
