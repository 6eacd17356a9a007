/* Kafka's default partition for a keyed record, in C: the pure-Python fallback is
 * worker/stream/partition.py (aiokafka's murmur2), used when this extension was not built.
 *
 * murmur2 is org.apache.kafka.common.utils.Utils.murmur2 (MurmurHash2, seed 0x9747b28c) with
 * 32-bit unsigned arithmetic; partition() is Utils.toPositive(murmur2(key)) % partitions. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

#include "murmur2.h"

static PyObject *py_murmur2(PyObject *self, PyObject *arg)
{
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    uint32_t h = murmur2((const unsigned char *)view.buf, view.len);
    PyBuffer_Release(&view);
    return PyLong_FromUnsignedLong(h);
}

static PyObject *py_partition(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "partition(key, partitions) takes two arguments");
        return NULL;
    }
    long partitions = PyLong_AsLong(args[1]);
    if (partitions == -1 && PyErr_Occurred())
        return NULL;
    if (partitions <= 0) {
        PyErr_SetString(PyExc_ValueError, "partitions must be positive");
        return NULL;
    }
    uint32_t h;
    if (PyBytes_CheckExact(args[0])) {
        h = murmur2((const unsigned char *)PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0]));
    } else {
        Py_buffer view;
        if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
            return NULL;
        h = murmur2((const unsigned char *)view.buf, view.len);
        PyBuffer_Release(&view);
    }
    return PyLong_FromLong((long)((h & 0x7fffffffu) % (unsigned long)partitions));
}

static PyMethodDef methods[] = {
    {"murmur2", py_murmur2, METH_O, "murmur2(key) -> unsigned 32-bit MurmurHash2, as Kafka's Utils.murmur2"},
    {"partition", (PyCFunction)(void (*)(void))py_partition, METH_FASTCALL,
     "partition(key, partitions) -> Kafka's default partition of a keyed record"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_murmur2", NULL, 0, methods};

PyMODINIT_FUNC PyInit__murmur2(void) { return PyModule_Create(&module); }
