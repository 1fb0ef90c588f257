package tun

// DriverVnet is the Linux fast path, the default there: a TUN opened with
// IFF_VNET_HDR and TSO/checksum offloads, so TCP segments of up to 64 KiB
// cross the device each way (see VnetEndpoint). Other systems reject it.
const DriverVnet Driver = "vnet"
