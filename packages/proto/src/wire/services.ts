/**
 * The gRPC service definitions the project uses: the generated ones with the
 * hot methods' (de)serializers swapped for the hand-written codec (codec.ts).
 * The wire bytes are unchanged, so a peer built on the generated definitions
 * interoperates; the TypeScript types are the generated ones.
 */
import { makeGenericClientConstructor } from "@grpc/grpc-js";
import * as logstore from "../gen/logplayer/v1/logstore";
import * as shard from "../gen/logplayer/v1/shard";
import {
  decodeAppendRequest,
  decodeAppendStreamResponse,
  decodeDeliverRequest,
  decodeDeliverResponse,
  decodeReadResponse,
  encodeAppendRequest,
  encodeAppendStreamResponse,
  encodeDeliverRequest,
  encodeDeliverResponse,
  encodeReadResponse,
} from "./codec";

export const LogStoreService = {
  ...logstore.LogStoreService,
  append: {
    ...logstore.LogStoreService.append,
    requestSerialize: encodeAppendRequest,
    requestDeserialize: decodeAppendRequest,
  },
  appendStream: {
    ...logstore.LogStoreService.appendStream,
    requestSerialize: encodeAppendRequest,
    requestDeserialize: decodeAppendRequest,
    responseSerialize: encodeAppendStreamResponse,
    responseDeserialize: decodeAppendStreamResponse,
  },
  read: {
    ...logstore.LogStoreService.read,
    responseSerialize: encodeReadResponse,
    responseDeserialize: decodeReadResponse,
  },
} as const satisfies typeof logstore.LogStoreService;

export const ShardService = {
  ...shard.ShardService,
  deliver: {
    ...shard.ShardService.deliver,
    requestSerialize: encodeDeliverRequest,
    requestDeserialize: decodeDeliverRequest,
    responseSerialize: encodeDeliverResponse,
    responseDeserialize: decodeDeliverResponse,
  },
} as const satisfies typeof shard.ShardService;

export type LogStoreClient = logstore.LogStoreClient;
export const LogStoreClient = makeGenericClientConstructor(
  LogStoreService,
  "logplayer.v1.LogStore",
) as unknown as typeof logstore.LogStoreClient;

export type ShardClient = shard.ShardClient;
export const ShardClient = makeGenericClientConstructor(ShardService, "logplayer.v1.Shard") as unknown as typeof shard.ShardClient;
