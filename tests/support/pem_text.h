// A key as PEM text, for tests and benchmarks that make keys with OpenSSL
// and hand them to code that reads PEM (libjwt's signing, parse_keys).
#pragma once

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <string>

namespace aurora::test {

// The private key (PKCS#8) when `private_key`, else the public key
// (SubjectPublicKeyInfo). Empty if OpenSSL refuses.
inline std::string pem_text(EVP_PKEY *key, bool private_key) {
    BIO *bio = BIO_new(BIO_s_mem());
    if (!bio) return {};
    const int ok = private_key ? PEM_write_bio_PrivateKey(bio, key, nullptr, nullptr, 0, nullptr, nullptr)
                               : PEM_write_bio_PUBKEY(bio, key);
    char *data = nullptr;
    const long n = ok == 1 ? BIO_get_mem_data(bio, &data) : 0;
    std::string out = n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
    BIO_free(bio);
    return out;
}

}  // namespace aurora::test
