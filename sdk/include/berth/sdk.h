/* SPDX-License-Identifier: Apache-2.0 */
/**
 * @file berth/sdk.h
 * @brief Everything a berth driver includes: the plugin descriptor, the
 *        host API and the ops tables of the four driver kinds.
 *
 * Build a driver against the installed SDK with
 *   cc -shared -fPIC -fvisibility=hidden $(pkg-config --cflags berth-sdk) ...
 * and install it into $(pkg-config --variable=pluginsdir berth-sdk).
 * See sdk/examples/ in the source tree.
 */
#ifndef BERTH_SDK_H
#define BERTH_SDK_H

#include <berth/types.h>
#include <berth/plugin.h>
#include <berth/isolation.h>
#include <berth/storage.h>
#include <berth/network.h>
#include <berth/image.h>

#endif /* BERTH_SDK_H */
