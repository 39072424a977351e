/* A C program built against an installed libmapcache (tests/packaging/test_install.sh):
   makes a cache with the default config (gpu_mode MAPCACHE_GPU_AUTO, no plugin
   path: the plugin beside the library) and prints what mapcache_gpu_status says. */
#include <stdio.h>

#include <mapcache.h>

int main(void) {
    mapcache_config cfg;
    mapcache_t *cache = NULL;
    if (mapcache_config_init(&cfg, sizeof cfg) != MAPCACHE_OK || mapcache_new(&cfg, &cache) != MAPCACHE_OK) {
        fprintf(stderr, "mapcache_new: %s\n", mapcache_last_error());
        return 1;
    }
    mapcache_gpu_info info;
    info.struct_size = sizeof info;
    if (mapcache_gpu_status(cache, &info) != MAPCACHE_OK) {
        fprintf(stderr, "mapcache_gpu_status: %s\n", mapcache_last_error());
        mapcache_free(cache);
        return 1;
    }
    printf("active=%u reason=%s\n", info.active, info.reason);
    mapcache_free(cache);
    return 0;
}
