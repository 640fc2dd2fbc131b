/*
 * pyconfig.h for building an extension for 64-bit Windows CPython with
 * mingw-w64 (used by .ci/windows/suite.py only; wheels are built by MSVC
 * against the interpreter's own file).
 *
 * CPython's public headers are the same on every platform but for this
 * file. What it states are facts of the MSVC build of CPython on x86-64
 * Windows that an extension's view of the headers depends on: the sizes
 * of C types on that ABI (LLP64: long is 4 bytes, wchar_t 2), that the
 * interpreter is a DLL whose symbols are imported, and which headers exist.
 * Nothing here configures the interpreter itself.
 */
#ifndef FASTKV_WIN_PYCONFIG_H
#define FASTKV_WIN_PYCONFIG_H

#include <io.h>
#include <basetsd.h>

/* The platform: Windows NT, 64-bit. MS_WIN64 is set by CPython's file
 * only under MSVC (_M_X64); mingw's gcc needs it stated. */
#define NT_THREADS 1
#define WITH_THREAD 1
#define MS_WIN32 1
#define MS_WINDOWS 1
#ifndef MS_WIN64
#define MS_WIN64 1
#endif
#define PLATFORM "win32"
#define Py_WINVER 0x0602
#define NTDDI_VERSION 0x06020000
#define COMPILER "[GCC mingw-w64 " __VERSION__ "]"
/* PyDoc_STR keeps the docstrings (without it every one compiles to ""),
 * as CPython's own file has it */
#define WITH_DOC_STRINGS 1

/* The interpreter is python3XX.dll: its symbols are imported. */
#define HAVE_DECLSPEC_DLL 1
#define Py_ENABLE_SHARED 1
#define HAVE_DYNAMIC_LOADING 1

/* Type sizes of the x86-64 Windows ABI. */
#define SIZEOF_SHORT 2
#define SIZEOF_INT 4
#define SIZEOF_LONG 4
#define SIZEOF_LONG_LONG 8
#define SIZEOF_DOUBLE 8
#define SIZEOF_FLOAT 4
#define SIZEOF_VOID_P 8
#define SIZEOF_SIZE_T 8
#define SIZEOF_TIME_T 8
#define SIZEOF_FPOS_T 8
#define SIZEOF_OFF_T 4
#define SIZEOF_WCHAR_T 2
#define SIZEOF__BOOL 1
#define SIZEOF_HKEY 8
#define SIZEOF_PID_T SIZEOF_INT
#define ALIGNOF_SIZE_T 8
#define ALIGNOF_LONG 4
#define HAVE_LARGEFILE_SUPPORT 1
#define HAVE_UINTPTR_T 1
#define HAVE_INTPTR_T 1
#define HAVE_SSIZE_T 1 /* mingw-w64 declares ssize_t as a 64-bit integer */
#define Py_LL(x) x##LL
#define Py_ULL(x) x##ULL

/* Headers and functions of the Windows C runtime. */
#define HAVE_WCHAR_H 1
#define HAVE_STDDEF_H 1
#define HAVE_SYS_STAT_H 1
#define HAVE_SYS_TYPES_H 1
#define HAVE_FCNTL_H 1
#define HAVE_IO_H 1
#define HAVE_PROCESS_H 1
#define HAVE_SIGNAL_H 1
#define HAVE_ERRNO_H 1
#define HAVE_STDARG_PROTOTYPES 1
#define HAVE_DIRECT_H 1
#define HAVE_CLOCK 1
#define HAVE_STRFTIME 1
#define HAVE_COPYSIGN 1
#define HAVE_ROUND 1
#define HAVE_HYPOT 1
#define HAVE_ERF 1
#define HAVE_ERFC 1
#define DONT_HAVE_SIG_ALARM 1
#define DONT_HAVE_SIG_PAUSE 1
#define LONG_BIT 32
#define WORD_BIT 32
#define PY_SUPPORT_TIER 1

/* Python's floats are IEEE 754 doubles, little-endian. */
#define DOUBLE_IS_LITTLE_ENDIAN_IEEE754 1
#define PY_FLOAT_BIG_ENDIAN 0
#define PY_FLOAT_LITTLE_ENDIAN 1

#endif /* FASTKV_WIN_PYCONFIG_H */
