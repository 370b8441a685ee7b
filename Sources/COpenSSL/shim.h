#ifndef VMESSD_COPENSSL_SHIM_H
#define VMESSD_COPENSSL_SHIM_H
#include <openssl/evp.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#endif
