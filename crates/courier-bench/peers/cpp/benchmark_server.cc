// The gRPC C++ benchmark peer: grpc.testing.BenchmarkService (UnaryCall,
// StreamingCall) and the parts of grpc.testing.TestService that benchmarks
// use (EmptyCall, UnaryCall, FullDuplexCall), on gRPC C++'s callback API.
// It is the C++ counterpart of courier-bench-server and tonic-bench-server,
// built from the same .proto files (crates/courier-bench/proto and
// crates/courier-interop/proto) by scripts/interop/install-cpp.sh, and
// started by scripts/bench.sh as the "cpp" implementation.
//
//   benchmark-server --port=N     # or --port N; 127.0.0.1, plaintext
//
// Every response carries a payload of the requested size (zero bytes); a
// streaming call answers each request with one response, in order, and ends
// with OK when the client half-closes. The server exits on SIGTERM or SIGINT.
//
// Threads: the callback API has no thread pool of its own to configure. The
// handlers below run on gRPC core's pollers and executor, which size
// themselves from the cores in the process's affinity mask (gRPC core counts
// them with sched_getaffinity), so under bench.sh's `taskset -c 0` that is
// one core, as for the other servers. The handlers never block.
//
// Written for Courier from the gRPC C++ API reference (grpcpp/support/
// server_callback.h, grpcpp/server_builder.h).

#include <climits>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include <pthread.h>

#include <grpcpp/grpcpp.h>

#include "grpc/testing/benchmark_service.grpc.pb.h"
#include "grpc/testing/test.grpc.pb.h"

namespace {

using grpc::CallbackServerContext;
using grpc::ServerBidiReactor;
using grpc::ServerUnaryReactor;
using grpc::Status;
using grpc::StatusCode;
using grpc::testing::Empty;
using grpc::testing::SimpleRequest;
using grpc::testing::SimpleResponse;
using grpc::testing::StreamingOutputCallRequest;
using grpc::testing::StreamingOutputCallResponse;

// The largest payload served; gRPC's default receive limit is 4 MiB, and the
// benchmarks ask for at most 1 MiB.
constexpr int kMaxPayload = 4 << 20;

// Fills `payload` with `size` zero bytes. protobuf's string fields own
// their bytes, so this is one allocation and memset per response (the Rust
// servers slice a static buffer instead; a static buffer here would still
// cost a copy, and its pages would count in the server's RSS).
Status FillPayload(int size, grpc::testing::Payload* payload) {
  if (size < 0 || size > kMaxPayload) {
    return Status(StatusCode::INVALID_ARGUMENT,
                  "response size " + std::to_string(size) + " is out of range");
  }
  payload->mutable_body()->resize(static_cast<size_t>(size));
  return Status::OK;
}

Status Answer(const SimpleRequest& request, SimpleResponse* response) {
  return FillPayload(request.response_size(), response->mutable_payload());
}

Status AnswerOutput(const StreamingOutputCallRequest& request,
                    StreamingOutputCallResponse* response) {
  if (request.response_parameters_size() != 1) {
    return Status(StatusCode::UNIMPLEMENTED,
                  "the bench server answers each request with exactly one response");
  }
  return FillPayload(request.response_parameters(0).size(), response->mutable_payload());
}

// One streaming call: read a request, write its answer, read the next. At
// most one read or one write is outstanding, so Finish never races a write.
// When the client half-closes (a read completes with ok == false), the call
// ends with OK; a request that cannot be answered ends it with that error.
template <typename Request, typename Response,
          Status (*AnswerFn)(const Request&, Response*)>
class EchoStream final : public ServerBidiReactor<Request, Response> {
 public:
  EchoStream() { this->StartRead(&request_); }

  void OnReadDone(bool ok) override {
    if (!ok) {
      this->Finish(Status::OK);
      return;
    }
    response_.Clear();
    Status status = AnswerFn(request_, &response_);
    if (!status.ok()) {
      this->Finish(status);
      return;
    }
    this->StartWrite(&response_);
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      // The stream is gone (cancelled or reset): nothing more to send.
      this->Finish(Status(StatusCode::CANCELLED, "write failed"));
      return;
    }
    this->StartRead(&request_);
  }

  void OnDone() override { delete this; }

 private:
  Request request_;
  Response response_;
};

// Ends a unary call with `status` through the context's default reactor.
ServerUnaryReactor* Done(CallbackServerContext* context, const Status& status) {
  ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

class BenchmarkService final : public grpc::testing::BenchmarkService::CallbackService {
  ServerUnaryReactor* UnaryCall(CallbackServerContext* context, const SimpleRequest* request,
                                SimpleResponse* response) override {
    return Done(context, Answer(*request, response));
  }

  ServerBidiReactor<SimpleRequest, SimpleResponse>* StreamingCall(
      CallbackServerContext*) override {
    return new EchoStream<SimpleRequest, SimpleResponse, Answer>();
  }
};

// TestService's other methods keep the generated defaults: UNIMPLEMENTED.
class TestService final : public grpc::testing::TestService::CallbackService {
  ServerUnaryReactor* EmptyCall(CallbackServerContext* context, const Empty*, Empty*) override {
    return Done(context, Status::OK);
  }

  ServerUnaryReactor* UnaryCall(CallbackServerContext* context, const SimpleRequest* request,
                                SimpleResponse* response) override {
    return Done(context, Answer(*request, response));
  }

  ServerBidiReactor<StreamingOutputCallRequest, StreamingOutputCallResponse>* FullDuplexCall(
      CallbackServerContext*) override {
    return new EchoStream<StreamingOutputCallRequest, StreamingOutputCallResponse,
                          AnswerOutput>();
  }
};

[[noreturn]] void Usage(const char* why) {
  std::fprintf(stderr, "benchmark-server: %s\nusage: benchmark-server --port=N\n", why);
  std::exit(2);
}

int ParsePort(int argc, char** argv) {
  const char* value = nullptr;
  for (int i = 1; i < argc; i++) {
    if (std::strncmp(argv[i], "--port=", 7) == 0) {
      value = argv[i] + 7;
    } else if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
      value = argv[++i];
    } else {
      Usage((std::string("unknown argument: ") + argv[i]).c_str());
    }
  }
  if (value == nullptr) Usage("--port is required");
  char* end = nullptr;
  long port = std::strtol(value, &end, 10);
  if (*value == '\0' || *end != '\0' || port < 0 || port > 65535) Usage("bad --port");
  return static_cast<int>(port);
}

}  // namespace

int main(int argc, char** argv) {
  int port = ParsePort(argc, argv);

  // SIGTERM and SIGINT are blocked before gRPC starts its threads, which
  // inherit the mask, so only sigwait below ever sees them.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGTERM);
  sigaddset(&stop, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  BenchmarkService benchmark;
  TestService test;
  int bound = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:" + std::to_string(port),
                           grpc::InsecureServerCredentials(), &bound);
  // As the Rust servers: no limit on concurrent streams (streams-10k opens
  // 10,000 on one connection). TCP_NODELAY is gRPC C++'s default.
  builder.AddChannelArgument(GRPC_ARG_MAX_CONCURRENT_STREAMS, INT_MAX);
  builder.RegisterService(&benchmark);
  builder.RegisterService(&test);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || bound == 0) {
    std::fprintf(stderr, "benchmark-server: cannot listen on 127.0.0.1:%d\n", port);
    return 1;
  }
  std::fprintf(stderr, "cpp-bench-server listening on 127.0.0.1:%d\n", bound);

  int sig = 0;
  sigwait(&stop, &sig);
  // Calls still running get one second, as the Rust servers' grace period.
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server->Wait();
  return 0;
}
