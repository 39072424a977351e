/* A C program built against an installed libmapcache (tests/packaging/test_install.sh):
   checks the ABI, stores and reads back a value, prints what it read. */
#include <stdio.h>
#include <string.h>

#include <mapcache.h>

int main(void) {
    if (mapcache_abi_version() != MAPCACHE_ABI_VERSION) {
        fprintf(stderr, "ABI %u, built for %u\n", mapcache_abi_version(), MAPCACHE_ABI_VERSION);
        return 1;
    }
    mapcache_config cfg;
    mapcache_t *cache = NULL;
    if (mapcache_config_init(&cfg, sizeof cfg) != MAPCACHE_OK || mapcache_new(&cfg, &cache) != MAPCACHE_OK) {
        fprintf(stderr, "mapcache_new: %s\n", mapcache_last_error());
        return 1;
    }
    const char *key = "user:42", *value = "Ada";
    char buf[16];
    size_t len = 0;
    if (mapcache_put(cache, (const uint8_t *)key, strlen(key), (const uint8_t *)value, strlen(value), NULL) != MAPCACHE_OK ||
        mapcache_get(cache, (const uint8_t *)key, strlen(key), (uint8_t *)buf, sizeof buf, &len) != MAPCACHE_OK) {
        fprintf(stderr, "put/get: %s\n", mapcache_last_error());
        mapcache_free(cache);
        return 1;
    }
    printf("libmapcache %s, ABI %u: %s = %.*s\n", mapcache_version(), mapcache_abi_version(), key, (int)len, buf);
    mapcache_free(cache);
    return 0;
}
