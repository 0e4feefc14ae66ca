/* jit.c - jit_compile(): Model -> LLVM module -> optimised native code (ORC LLJIT).
 *
 * The flat list of steps: a TargetMachine for the host CPU (its features, so
 * the vectoriser sees what -march=native would give), one module in a
 * thread-safe context, the kernels (jit_kernels.c), the verifier, the new
 * pass manager's default<On> pipeline (LLVMRunPasses), then an LLJIT that
 * owns the module, resolves C library symbols (exp, log1p, tanh, ...) in the
 * process through a DynamicLibrarySearchGenerator and hands back the entry
 * points.  Ownership transfers are commented where they happen; every
 * LLVMErrorRef is checked, its message copied into err and disposed.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "jit_internal.h"

struct Jit {
	JitKernels k;
	LLVMOrcLLJITRef lljit;
	size_t *input_off, *output_off;
	int64_t *tensor_ws_off;
	uint32_t ntensors;
};

static pthread_once_t jit_llvm_once = PTHREAD_ONCE_INIT;
static int jit_llvm_ok;

static void jit_init_llvm(void)
{
	jit_llvm_ok = !LLVMInitializeNativeTarget() && !LLVMInitializeNativeAsmPrinter();
}

static void jit_errf(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void jit_errf(char *err, size_t errlen, const char *fmt, ...)
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
static int jit_check(LLVMErrorRef e, const char *what, char *err, size_t errlen)
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

/* A TargetMachine for the host CPU and its features. */
static LLVMTargetMachineRef jit_host_tm(int opt, char *err, size_t errlen)
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

/* Emits the kernels into mod, dumps it when asked (before verifying, so a
 * broken module can be read) and verifies it. */
static int jit_build_module(LLVMModuleRef mod, const Model *m, JitLayout *lay, FILE *dump,
                            char *err, size_t errlen)
{
	JitEmit E;
	jit_emit_init(&E, mod, m);
	int rc = jit_build_kernels(&E, lay);
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

static int jit_optimise(LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt, char *err, size_t errlen)
{
	char pipeline[32];
	if (opt <= 0)
		return 0;
	snprintf(pipeline, sizeof pipeline, "default<O%d>", opt > 3 ? 3 : opt);
	LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
	LLVMPassBuilderOptionsSetLoopVectorization(po, 1);
	LLVMPassBuilderOptionsSetSLPVectorization(po, 1);
	LLVMPassBuilderOptionsSetLoopUnrolling(po, 1);
	LLVMErrorRef e = LLVMRunPasses(mod, pipeline, tm, po);
	LLVMDisposePassBuilderOptions(po);
	return jit_check(e, "jit: optimisation", err, errlen);
}

/* Creates the LLJIT; consumes tm (the JIT's target machine builder takes it). */
static LLVMOrcLLJITRef jit_create_lljit(LLVMTargetMachineRef tm, char *err, size_t errlen)
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
	    jit_lookup(j, JIT_FN_INIT, &k->init_state, err, errlen) ||
	    jit_lookup(j, JIT_FN_RHS, &k->rhs, err, errlen) ||
	    jit_lookup(j, JIT_FN_ENERGY, &k->energy, err, errlen) ||
	    jit_lookup(j, JIT_FN_ACTS, &k->acts, err, errlen) ||
	    jit_lookup(j, JIT_FN_OUTPUTS, &k->outputs, err, errlen) ||
	    jit_lookup(j, JIT_FN_EULER, &k->euler, err, errlen))
		return -1;
	return 0;
}

Jit *jit_compile(const Model *m, const JitOptions *opt, char *err, size_t errlen)
{
	JitOptions defaults = {.opt_level = 3};
	JitLayout lay = {0};
	LLVMTargetMachineRef tm = NULL;
	LLVMOrcThreadSafeContextRef tsctx = NULL;
	LLVMModuleRef mod = NULL;
	Jit *j = NULL;

	if (!opt)
		opt = &defaults;
	pthread_once(&jit_llvm_once, jit_init_llvm);
	if (!jit_llvm_ok) {
		jit_errf(err, errlen, "jit: LLVM has no native target");
		return NULL;
	}
	if (!(tm = jit_host_tm(opt->opt_level, err, errlen)))
		goto fail;
	tsctx = LLVMOrcCreateNewThreadSafeContext();
	mod = LLVMModuleCreateWithNameInContext("dam", LLVMOrcThreadSafeContextGetContext(tsctx));
	char *triple = LLVMGetTargetMachineTriple(tm);
	LLVMSetTarget(mod, triple);
	LLVMDisposeMessage(triple);
	LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
	LLVMSetModuleDataLayout(mod, td);
	LLVMDisposeTargetData(td);

	if (jit_build_module(mod, m, &lay, opt->dump_ir_unopt, err, errlen))
		goto fail;
	if (jit_optimise(mod, tm, opt->opt_level, err, errlen))
		goto fail;
	if (opt->dump_ir)
		jit_dump(mod, opt->dump_ir);

	j = dam_xrealloc(NULL, sizeof *j);
	memset(j, 0, sizeof *j);
	j->lljit = jit_create_lljit(tm, err, errlen);
	tm = NULL;   /* consumed by jit_create_lljit */
	if (!j->lljit)
		goto fail;
	/* The thread-safe module takes ownership of mod. */
	LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(mod, tsctx);
	mod = NULL;
	LLVMErrorRef e = LLVMOrcLLJITAddLLVMIRModule(j->lljit, LLVMOrcLLJITGetMainJITDylib(j->lljit), tsm);
	if (e) {
		LLVMOrcDisposeThreadSafeModule(tsm);   /* not consumed on failure */
		jit_check(e, "jit: adding the module", err, errlen);
		goto fail;
	}
	/* The module holds its own reference to the context now. */
	LLVMOrcDisposeThreadSafeContext(tsctx);
	tsctx = NULL;
	if (jit_lookup_all(j, err, errlen))
		goto fail;

	j->tensor_ws_off = lay.tensor_ws_off;
	j->ntensors = lay.ntensors;
	j->input_off = lay.input_off;
	j->output_off = lay.output_off;
	j->k.input_off = lay.input_off;
	j->k.output_off = lay.output_off;
	j->k.ws_size = lay.ws_size;
	j->k.nstate = lay.nstate;
	j->k.noutput = lay.noutput;
	j->k.nact = lay.nact;
	return j;

fail:
	if (j) {
		if (j->lljit)
			jit_check(LLVMOrcDisposeLLJIT(j->lljit), "jit: disposing", NULL, 0);
		dam_free(j);
	}
	if (mod)
		LLVMDisposeModule(mod);
	if (tsctx)
		LLVMOrcDisposeThreadSafeContext(tsctx);
	if (tm)
		LLVMDisposeTargetMachine(tm);
	dam_free(lay.input_off);
	dam_free(lay.output_off);
	dam_free(lay.tensor_ws_off);
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
	dam_free(j);
}

int64_t jit_ws_offset(const Jit *j, TensorId t)
{
	if (!j || t == 0 || t >= j->ntensors)
		return -1;
	return j->tensor_ws_off[t];
}
